import { ConfigError, DecryptionError } from "../errors.js";
import { FLAG_PADDED, FLAG_STREAM_KEY } from "./constants.js";
import { decodeContext, type EncryptionContext, encodeSnapshot } from "./context.js";
import { decodeEnvelope } from "./decode.js";
import { markDecodedHere } from "./decoded-here.js";
import type { EnvelopeParts } from "./envelope.js";
import { fromText } from "./text.js";

/** A sealed value in either form: binary bytes or an `ev1:` string. */
export type Sealed = Uint8Array | string;

/** What `inspect` reports about a sealed value: header facts only, never key material. */
export interface EnvelopeInfo {
  form: "binary" | "text";
  version: number;
  suite: number;
  messageId: string;
  contextStored: boolean;
  /** Flags bit 1: the key envelope of a stream (opened by `decryptStream`, never by `decrypt`). */
  streamKey: boolean;
  /**
   * Flags bit 2: the body holds the value plus length padding (FORMAT.md §2.3), so
   * `bodyBytes` is the padded length, not the value's.
   */
  padded: boolean;
  context?: EncryptionContext;
  /** Suite 0x02: the signer's public key as `ed25519:<hex>` (not verified by inspect). */
  signer?: string;
  entries: { provider: string; keyRef: string; wrappedBytes: number }[];
  bodyBytes: number;
  totalBytes: number;
}

/**
 * docs/FORMAT.md §7 step 1: a string must be the text form (§9) and becomes bytes; the
 * bytes are decoded as the binary form (§2.1). The purpose check (§2.2) is the caller's.
 */
export function parse(sealed: Sealed): EnvelopeParts {
  if (typeof sealed === "string") {
    // Decoded here and held by no one else: a large body may be deciphered in place.
    const bytes = fromText(sealed);
    markDecodedHere(bytes);
    return decodeEnvelope(bytes);
  }
  if (sealed instanceof Uint8Array) return decodeEnvelope(sealed);
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `A sealed value must be a Buffer, Uint8Array or "ev1:" string; got ${sealed === null ? "null" : typeof sealed}.`,
  );
}

/**
 * The context to authenticate: the stored one (checked against `given`) or `given`.
 * `given` is a `snapshotContext` result (read once by the caller). FORMAT.md §7 step 2.
 */
export function resolveContext(
  parts: EnvelopeParts,
  given: EncryptionContext | undefined,
): { context: EncryptionContext; canonical: Buffer } {
  // §7 step 2, flag clear: the supplied context's canonical encoding (`00 00` if none).
  if (!parts.storedContext) {
    return { context: given ?? {}, canonical: encodeSnapshot(given) };
  }
  const stored = Buffer.from(parts.storedContext);
  // Flag set: the stored context must be canonical (§4.1), and equal the supplied one if
  // any (ENVELOPE_CONTEXT_MISMATCH, before any key is used).
  const storedContext = decodeContext(stored);
  if (given !== undefined && !encodeSnapshot(given).equals(stored)) {
    throw new DecryptionError(
      "ENVELOPE_CONTEXT_MISMATCH",
      "The encryption context given does not match the one stored in the envelope. The value was probably copied from another row or column.",
    );
  }
  return { context: storedContext, canonical: stored };
}

/** Header facts of a sealed value. No secrets: ids, key references and sizes. */
export function inspectEnvelope(sealed: Sealed): EnvelopeInfo {
  const parts = parse(sealed);
  const info: EnvelopeInfo = {
    form: typeof sealed === "string" ? "text" : "binary",
    version: parts.version,
    suite: parts.suite,
    messageId: hex(parts.messageId),
    contextStored: parts.storedContext !== undefined,
    streamKey: (parts.flags & FLAG_STREAM_KEY) !== 0,
    padded: (parts.flags & FLAG_PADDED) !== 0,
    entries: parts.entries.map((e) => ({
      provider: e.providerId,
      keyRef: e.keyRef,
      wrappedBytes: e.wrapped.length,
    })),
    bodyBytes: parts.body.length,
    totalBytes: typeof sealed === "string" ? Buffer.byteLength(sealed) : sealed.length,
  };
  if (parts.storedContext) info.context = decodeContext(parts.storedContext);
  if (parts.signerKey) info.signer = `ed25519:${hex(parts.signerKey)}`;
  return info;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}
