import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecryptOptions,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  type KeyProvider,
  localAesProvider,
} from "@envelope/core";
// Resolved by the root vitest config and tsconfig paths (the root package depends on it); a
// devDependency of core would make a workspace cycle, since local-rsa depends on core.
import { localRsaProvider } from "@envelope/local-rsa";
import { expect, it } from "vitest";

/** Shared plumbing of the vector runner (packages/core/test/vectors.test.ts). */

export const VECTORS_DIR = fileURLToPath(new URL("./", import.meta.url));

/** One vector family: a folder of vector files and the tests that run them. */
export interface Family<V> {
  /** Folder under packages/core/test/vectors/, and the describe title's prefix. */
  readonly folder: string;
  readonly title: string;
  /** The vector files in the folder (generators and notes are not vectors). */
  readonly files: RegExp;
  /** Checks one parsed file's shape and returns it typed; throws saying what is wrong. */
  parse(json: unknown, file: string): V;
  /** Registers the family's tests (inside a describe). */
  tests(vectors: readonly V[]): void;
}

/** Identity with inference, so each family module is checked against the interface. */
export function defineFamily<V>(family: Family<V>): Family<V> {
  return family;
}

/**
 * Every vector file of a family, parsed and sorted by name. Throws (so the runner fails)
 * when the folder holds no vector file or a file is not valid JSON of the family's shape:
 * a vector that silently fails to load is a vector that silently stops being checked.
 */
export function loadFamily<V>(family: Family<V>, root = VECTORS_DIR): V[] {
  const dir = join(root, family.folder);
  const names = readdirSync(dir)
    .filter((name) => family.files.test(name))
    .sort();
  if (names.length === 0) {
    throw new Error(`vector family "${family.folder}": no file matching ${family.files} in ${dir}`);
  }
  return names.map((name) => {
    const text = readFileSync(join(dir, name), "utf8");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`vector file ${family.folder}/${name} is not valid JSON: ${String(e)}`);
    }
    return family.parse(json, name);
  });
}

/** The fields every per-file vector (v1, padded, signed) shares; see vectors/README.md. */
export interface DecryptVector {
  id: string;
  kind: "positive" | "negative";
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  envelopeFile?: string;
  envelopeSha256?: string;
  keys: {
    localRsa?: { keyRef: string; privateKeyPem: string }[];
    localAes?: { keyRef: string; keyHex: string }[];
  };
  decrypt: { context?: EncryptionContext; trustedSigners?: string[] };
  expected: {
    plaintextHex?: string;
    plaintextUtf8?: string;
    plaintextRule?: { repeatHex: string; length: number };
    plaintextSha256?: string;
    error?: string;
    errorClass?: string;
  };
  layout?: { field: string; offset: number; length: number }[];
}

/** Shape check for a per-file vector: `id` is the file name, and the outcome is stated. */
export function parseDecryptVector<V extends DecryptVector>(json: unknown, file: string): V {
  const v = json as Partial<DecryptVector> | null;
  const problem =
    typeof v !== "object" || v === null
      ? "not an object"
      : `${v.id}.json` !== file
        ? `id ${JSON.stringify(v.id)} does not match the file name`
        : v.kind !== "positive" && v.kind !== "negative"
          ? `kind ${JSON.stringify(v.kind)}`
          : typeof v.keys !== "object" || typeof v.decrypt !== "object"
            ? "no keys or decrypt"
            : v.kind === "negative" && (!v.expected?.error || !v.expected.errorClass)
              ? "a negative vector without expected.error and expected.errorClass"
              : v.kind === "positive" &&
                  v.expected?.plaintextHex === undefined &&
                  v.expected?.plaintextRule === undefined
                ? "a positive vector without an expected plaintext"
                : v.envelopeHex === undefined &&
                    v.envelopeText === undefined &&
                    v.envelopeFile === undefined
                  ? "no envelope"
                  : undefined;
  if (problem) throw new Error(`vector file ${file}: ${problem}`);
  return json as V;
}

/** A client holding exactly the vector's keys, with no cache (every decrypt unwraps). */
export function vectorClient(v: DecryptVector): Envelope {
  const providers: KeyProvider[] = [];
  const { localRsa, localAes } = v.keys;
  if (localRsa)
    providers.push(localRsaProvider({ keys: localRsa.map((k) => ({ pem: k.privateKeyPem })) }));
  if (localAes) providers.push(localAesProvider({ keys: localAes.map((k) => k.keyHex) }));
  const [first, ...rest] = providers;
  const signers = v.decrypt.trustedSigners;
  return new Envelope({
    encrypt: first!,
    decrypt: rest,
    cache: false,
    ...(signers ? { trustedSigners: signers.map((hex) => Buffer.from(hex, "hex")) } : {}),
  });
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The input decrypt gets: the text form, the bytes, or the bytes from a side file. */
export function sealedInput(v: DecryptVector, dir: string): Buffer | string {
  if (v.envelopeText !== undefined) return v.envelopeText;
  if (v.envelopeHex !== undefined) return Buffer.from(v.envelopeHex, "hex");
  const text = readFileSync(join(dir, v.envelopeFile!), "utf8");
  const bytes = Buffer.from(text.replace(/\s+/g, ""), "base64");
  expect(sha256(bytes)).toBe(v.envelopeSha256);
  return bytes;
}

/** The binary form of the input (the text form is "ev1:" + base64url). */
export function binaryOf(input: Buffer | string): Buffer {
  return typeof input === "string" ? Buffer.from(input.slice(4), "base64url") : input;
}

function expectedPlaintext(v: DecryptVector): Buffer {
  const { plaintextHex, plaintextRule, plaintextSha256 } = v.expected;
  if (plaintextHex !== undefined) return Buffer.from(plaintextHex, "hex");
  const unit = Buffer.from(plaintextRule!.repeatHex, "hex");
  const out = Buffer.alloc(plaintextRule!.length);
  for (let o = 0; o < out.length; o += unit.length) unit.copy(out, o);
  expect(sha256(out)).toBe(plaintextSha256);
  return out;
}

/** Expects a typed EnvelopeError with exactly this code and class. */
export async function expectFailure(
  attempt: Promise<unknown>,
  expected: { error?: string; errorClass?: string },
): Promise<void> {
  const error: unknown = await attempt.then(
    () => new Error("decrypt succeeded; the vector expects it to fail"),
    (e: unknown) => e,
  );
  expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
  expect((error as EnvelopeError).code).toBe(expected.error);
  expect((error as EnvelopeError).name).toBe(expected.errorClass);
}

export interface DecryptHooks<V extends DecryptVector> {
  /** The folder the vectors came from (for side files such as pos-04's base64). */
  dir: string;
  /** Checks a positive vector's intermediate values from the spec alone. */
  checkPositive(v: V, binary: Buffer): void;
}

/**
 * One test per vector: a positive opens to the exact plaintext (and text, when stated) and
 * passes the family's intermediate checks; a negative fails with the exact code and class.
 */
export function decryptEach<V extends DecryptVector>(
  vectors: readonly V[],
  hooks: DecryptHooks<V>,
): void {
  it.each(vectors.map((v) => [v.id, v] as const))("%s", async (_id, v) => {
    const envelope = vectorClient(v);
    const input = sealedInput(v, hooks.dir);
    const options: DecryptOptions<"bytes"> =
      v.decrypt.context === undefined ? {} : { context: v.decrypt.context };
    if (v.kind === "negative") {
      await expectFailure(envelope.decrypt(input, options), v.expected);
      return;
    }
    const plaintext = await envelope.decrypt(input, options);
    const want = expectedPlaintext(v);
    if (want.length > 4096) expect(sha256(plaintext)).toBe(sha256(want));
    else expect(plaintext.toString("hex")).toBe(want.toString("hex"));
    if (v.expected.plaintextUtf8 !== undefined) {
      expect(await envelope.decrypt(input, { ...options, as: "text" as const })).toBe(
        v.expected.plaintextUtf8,
      );
    }
    hooks.checkPositive(v, binaryOf(input));
  });
}

/** Fails unless every name is a substring of some vector id (the family's required cases). */
export function expectCases(vectors: readonly { id: string }[], needed: readonly string[]): void {
  const ids = vectors.map((v) => v.id).join(" ");
  for (const name of needed) expect(ids).toContain(name);
}
