import { DecryptionError } from "../errors.js";
import { FLAG_PADDED, FLAG_STREAM_KEY } from "./constants.js";

/**
 * What an envelope is for, bound into its AAD through flags bit 1 (docs/FORMAT.md §2):
 * - `value`: an ordinary value (bit clear); the only purpose `decrypt` accepts;
 * - `stream-key`: the key envelope of a stream (bit set); only the stream module seals
 *   and opens it;
 * - `legacy-stream-key`: a stream key envelope written before bit 1 existed (bit clear),
 *   accepted only with `decryptStream(…, { allowLegacyKeyEnvelope: true })`; bit set is
 *   accepted too.
 */
export type Purpose = "value" | "stream-key" | "legacy-stream-key";

/**
 * Module-private option key. Not exported from the package (nor from `./internal`), so
 * callers of `encrypt` / `decrypt` cannot choose a purpose: only `encryptStream` and
 * `decryptStream` pass it. A plain `Symbol()`, never `Symbol.for`.
 */
export const PURPOSE: unique symbol = Symbol("envelope.purpose");

/** Options of `encrypt` / `decrypt` as the stream module passes them. */
export interface WithPurpose {
  readonly [PURPOSE]?: Purpose;
}

/** The purpose an options object asks for (`value` unless the stream module set one). */
export function purposeOf(options: object | undefined): Purpose {
  return (options as WithPurpose | undefined)?.[PURPOSE] ?? "value";
}

/** The flag bits an encoder sets for a purpose. */
export function purposeFlags(options: object | undefined): number {
  return purposeOf(options) === "value" ? 0 : FLAG_STREAM_KEY;
}

/**
 * Refuses an envelope whose flags bit 1 does not match the purpose it is opened for,
 * with `ENVELOPE_WRONG_PURPOSE`. Called right after parsing, before any key is unwrapped
 * (docs/FORMAT.md §2.2, §7 step 1; STREAMING.md "Decoding" step 3, "purpose").
 */
export function checkPurpose(flags: number, options: object | undefined): void {
  const purpose = purposeOf(options);
  const streamKey = (flags & FLAG_STREAM_KEY) !== 0;
  // §2.2: `decrypt` refuses a stream key envelope.
  if (purpose === "value" && streamKey) {
    throw new DecryptionError(
      "ENVELOPE_WRONG_PURPOSE",
      "This envelope is the key envelope of a stream, not a value: `decrypt` does not open it. Decrypt the whole stream with `decryptStream` (or `envelope decrypt`).",
      { details: { field: "flags", expected: "value", found: "stream-key" } },
    );
  }
  // §2.3 structure rules: a legacy stream key envelope predates padding, so a padded one
  // was never a stream's key (bits 1 and 2 together are already refused by the decoder).
  if (purpose !== "value" && (flags & FLAG_PADDED) !== 0) {
    throw new DecryptionError(
      "ENVELOPE_WRONG_PURPOSE",
      "The stream's key envelope is padded (flags bit 2), which no stream key envelope is: it is a value envelope placed in a stream header. The stream was altered or planted.",
      { details: { field: "flags", expected: "stream-key", found: "value" } },
    );
  }
  // §2.2 and STREAMING.md "Purpose": a stream decoder requires bit 1 unless it opted in to
  // legacy key envelopes.
  if (purpose === "stream-key" && !streamKey) {
    throw new DecryptionError(
      "ENVELOPE_WRONG_PURPOSE",
      "The stream's key envelope is not marked as a stream key envelope (flags bit 1): it is either a value envelope placed in a stream header, or a stream written by @envelope/core before 0.2. If you trust this file's origin, pass `allowLegacyKeyEnvelope: true` to `decryptStream` (`--allow-legacy-stream` on the CLI), then re-encrypt it.",
      { details: { field: "flags", expected: "stream-key", found: "value" } },
    );
  }
}
