import { Readable } from "node:stream";
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

/** streaming-coverage.json: key envelope variants, each vector with its own reader options. */
interface CoverageVector {
  name: string;
  /** The key envelope's suite and flags bytes (stream offsets 16 and 17). */
  keyEnvelope: { suite: number; flags: number };
  /** context / allowLegacyKeyEnvelope go to decryptStream; trustedSigners (hex) to the client. */
  decryptOptions: {
    context?: Record<string, string>;
    trustedSigners?: string[];
    allowLegacyKeyEnvelope?: boolean;
  };
  /** Byte lengths of the successive writes; absent: any split. */
  feed?: number[];
  stream: string;
}
interface CoverageFile {
  localAesKeyHex: string;
  positive: (CoverageVector & { plaintext: string })[];
  negative: (CoverageVector & {
    code: string;
    errorClass: string;
    details?: Record<string, string>;
    releasedBeforeError?: string;
  })[];
}

type StreamFile =
  | { file: "streaming.json"; data: LegacyFile }
  | { file: "streaming-purpose.json"; data: PurposeFile }
  | { file: "streaming-coverage.json"; data: CoverageFile };

function parse(json: unknown, file: string): StreamFile {
  const data = json as Partial<LegacyFile & PurposeFile> | null;
  const lists = Array.isArray(data?.positive) && Array.isArray(data?.negative);
  const ok =
    lists &&
    typeof data?.localAesKeyHex === "string" &&
    (file === "streaming.json"
      ? typeof data.wrongContext === "object"
      : file === "streaming-purpose.json"
        ? typeof data.keyEnvelopeViaDecrypt === "object"
        : file === "streaming-coverage.json" &&
          [...data.positive!, ...data.negative!].every(
            (v: Partial<CoverageVector>) =>
              typeof v.decryptOptions === "object" && typeof v.keyEnvelope?.flags === "number",
          ));
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

/** Feeds `writes` to `transform` one write each; what it released, and its error if any. */
async function feed(
  transform: NodeJS.ReadWriteStream,
  writes: Buffer[],
): Promise<{ released: string; error: unknown }> {
  const released: Buffer[] = [];
  transform.on("data", (d: Buffer) => released.push(d));
  const error = await new Promise<unknown>((resolve) => {
    transform.on("end", () => resolve(undefined));
    transform.on("error", resolve);
    Readable.from(writes).pipe(transform);
  });
  return { released: Buffer.concat(released).toString("hex"), error };
}

function coverageTests(vectors: CoverageFile): void {
  const open = ({ decryptOptions: o, stream }: CoverageVector, writes: Buffer[]) => {
    const envelope = new Envelope({
      encrypt: localAesProvider({ keys: vectors.localAesKeyHex }),
      cache: false,
      ...(o.trustedSigners
        ? { trustedSigners: o.trustedSigners.map((h) => Buffer.from(h, "hex")) }
        : {}),
    });
    expect(Buffer.concat(writes).toString("hex")).toBe(stream);
    return feed(
      decryptStream(envelope, {
        ...(o.context ? { context: o.context } : {}),
        ...(o.allowLegacyKeyEnvelope ? { allowLegacyKeyEnvelope: true } : {}),
      }),
      writes,
    );
  };
  /** The vector's own writes, or else the whole stream at once and in pieces of 1–3,000. */
  const splits = (v: CoverageVector): Buffer[][] => {
    const bytes = Buffer.from(v.stream, "hex");
    if (!v.feed) return [[bytes], pieces(bytes, 13)];
    const ends = v.feed.map((_, i) => v.feed!.slice(0, i + 1).reduce((a, b) => a + b, 0));
    return [ends.map((end, i) => bytes.subarray(ends[i - 1] ?? 0, end))];
  };
  const keyEnvelopeOf = (v: CoverageVector) => {
    const bytes = Buffer.from(v.stream, "hex");
    return { suite: bytes[16], flags: bytes[17] };
  };

  it.each(vectors.positive)("decrypts $name", async (v) => {
    expect(keyEnvelopeOf(v)).toEqual(v.keyEnvelope);
    for (const writes of splits(v)) {
      const { released, error } = await open(v, writes);
      expect(error).toBeUndefined();
      expect(released).toBe(v.plaintext);
    }
  });

  it.each(vectors.negative)("rejects $name with $code", async (v) => {
    expect(keyEnvelopeOf(v)).toEqual(v.keyEnvelope);
    for (const writes of splits(v)) {
      const { released, error } = await open(v, writes);
      expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
      expect((error as EnvelopeError).code).toBe(v.code);
      expect((error as EnvelopeError).name).toBe(v.errorClass);
      expect((error as EnvelopeError).details).toMatchObject(v.details ?? {});
      expect(released).toBe(v.releasedBeforeError ?? "");
    }
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
    const coverage = files.find((f) => f.file === "streaming-coverage.json");
    if (!legacy || !purpose || !coverage)
      throw new Error(
        "stream vectors: streaming.json, streaming-purpose.json and streaming-coverage.json are all required",
      );
    describe("streams from before the stream-key flag (streaming.json)", () => {
      legacyTests(legacy.data as LegacyFile);
    });
    describe("streams with the stream-key purpose flag (streaming-purpose.json)", () => {
      purposeTests(purpose.data as PurposeFile);
    });
    describe("key envelope variants and split writes (streaming-coverage.json)", () => {
      coverageTests(coverage.data as CoverageFile);
    });
  },
});
