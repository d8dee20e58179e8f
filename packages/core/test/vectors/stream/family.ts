import {
  DecryptionError,
  decryptStream,
  Envelope,
  EnvelopeError,
  FormatError,
  localAesProvider,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { pieces, run } from "../../../../../test/support/streams.js";
import { defineFamily } from "../harness.js";

/** streaming.json: streams from before the stream-key flag (docs/STREAMING.md). */
interface LegacyFile {
  localAesKeyHex: string;
  context: Record<string, string>;
  chunkSize: number;
  /** These streams predate the stream-key flag: their outcomes hold with the legacy opt-in. */
  decryptOptions: { allowLegacyKeyEnvelope: boolean };
  positive: { name: string; plaintext: string; stream: string }[];
  negative: { name: string; code: string; stream: string }[];
  wrongContext: { stream: string; context: Record<string, string>; code: string };
}

/** streaming-purpose.json: streams whose key envelope has flags bit 1 (FORMAT.md §2.2). */
interface PurposeFile {
  localAesKeyHex: string;
  context: Record<string, string>;
  positive: { name: string; plaintext: string; stream: string }[];
  negative: {
    name: string;
    code: string;
    stream: string;
    withAllowLegacy?: { plaintext: string } | { code: string };
  }[];
  keyEnvelopeViaDecrypt: { envelope: string; context: Record<string, string>; code: string };
}

type StreamFile =
  | { file: "streaming.json"; data: LegacyFile }
  | { file: "streaming-purpose.json"; data: PurposeFile };

function parse(json: unknown, file: string): StreamFile {
  const data = json as Partial<LegacyFile & PurposeFile> | null;
  const lists = Array.isArray(data?.positive) && Array.isArray(data?.negative);
  const ok =
    lists &&
    typeof data?.localAesKeyHex === "string" &&
    (file === "streaming.json"
      ? typeof data.wrongContext === "object"
      : file === "streaming-purpose.json" && typeof data.keyEnvelopeViaDecrypt === "object");
  if (!ok)
    throw new Error(`vector file stream/${file}: not a streaming vector file this runner knows`);
  return { file, data } as StreamFile;
}

function legacyTests(vectors: LegacyFile): void {
  const legacy = vectors.decryptOptions;
  const envelope = new Envelope({
    encrypt: localAesProvider({ keys: vectors.localAesKeyHex }),
    cache: false,
  });

  it.each(vectors.positive)("decrypts $name", async ({ plaintext, stream }) => {
    const out = await run(
      decryptStream(envelope, { context: vectors.context, ...legacy }),
      pieces(Buffer.from(stream, "hex"), 7),
    );
    expect(out.toString("hex")).toBe(plaintext);
  });

  it.each(vectors.negative)("rejects $name with $code", async ({ code, stream }) => {
    const error = await run(
      decryptStream(envelope, { context: vectors.context, ...legacy }),
      Buffer.from(stream, "hex"),
    ).catch((e) => e);
    expect(EnvelopeError.isInstance(error)).toBe(true);
    expect(error.code).toBe(code);
    expect(
      error instanceof FormatError ||
        error instanceof DecryptionError ||
        error.name === "ProviderError",
    ).toBe(true);
  });

  it("rejects the wrong context", async () => {
    const stream = vectors.positive.find((p) => p.name === vectors.wrongContext.stream)!.stream;
    await expect(
      run(
        decryptStream(envelope, { context: vectors.wrongContext.context, ...legacy }),
        Buffer.from(stream, "hex"),
      ),
    ).rejects.toMatchObject({ code: vectors.wrongContext.code });
  });

  it("needs the legacy opt-in: by default every legacy stream with a readable header is refused", async () => {
    expect(legacy).toEqual({ allowLegacyKeyEnvelope: true });
    const headerLevel = new Set(["header-truncated", "bad-magic", "unknown-version"]);
    for (const v of [...vectors.positive, ...vectors.negative]) {
      const error = await run(
        decryptStream(envelope, { context: vectors.context }),
        Buffer.from(v.stream, "hex"),
      ).catch((e) => e);
      const want = headerLevel.has(v.name)
        ? (v as { code: string }).code
        : "ENVELOPE_WRONG_PURPOSE";
      expect(error?.code, v.name).toBe(want);
    }
  });
}

function purposeTests(vectors: PurposeFile): void {
  const envelope = new Envelope({
    encrypt: localAesProvider({ keys: vectors.localAesKeyHex }),
    cache: false,
  });
  const open = (stream: string, options: { allowLegacyKeyEnvelope?: boolean } = {}) =>
    run(
      decryptStream(envelope, { context: vectors.context, ...options }),
      pieces(Buffer.from(stream, "hex"), 11),
    );

  it.each(vectors.positive)("decrypts $name", async ({ plaintext, stream }) => {
    expect((await open(stream)).toString("hex")).toBe(plaintext);
  });

  it.each(vectors.negative)("rejects $name with $code", async ({ code, stream }) => {
    const error = await open(stream).catch((e) => e);
    expect(EnvelopeError.isInstance(error)).toBe(true);
    expect(error.code).toBe(code);
  });

  it.each(vectors.negative)(
    "$name with allowLegacyKeyEnvelope",
    async ({ code, stream, withAllowLegacy }) => {
      const got = await open(stream, { allowLegacyKeyEnvelope: true }).then(
        (b) => ({ plaintext: b.toString("hex") }),
        (e) => ({ code: e.code }),
      );
      expect(got).toEqual(withAllowLegacy ?? { code });
    },
  );

  it("the key envelope given to decrypt is refused", async () => {
    const { envelope: keyEnvelope, context, code } = vectors.keyEnvelopeViaDecrypt;
    await expect(
      envelope.decrypt(Buffer.from(keyEnvelope, "hex"), { context }),
    ).rejects.toMatchObject({ code });
  });
}

export const stream = defineFamily<StreamFile>({
  folder: "stream",
  title: "streaming format v1 test vectors",
  files: /^streaming.*\.json$/,
  parse,
  tests(files) {
    const legacy = files.find((f) => f.file === "streaming.json");
    const purpose = files.find((f) => f.file === "streaming-purpose.json");
    if (!legacy || !purpose)
      throw new Error(
        "stream vectors: streaming.json and streaming-purpose.json are both required",
      );
    describe("streams from before the stream-key flag (streaming.json)", () => {
      legacyTests(legacy.data as LegacyFile);
    });
    describe("streams with the stream-key purpose flag (streaming-purpose.json)", () => {
      purposeTests(purpose.data as PurposeFile);
    });
  },
});
