import { FormatError } from "../errors.js";
import { FORMAT_VERSION } from "./constants.js";
import type { EnvelopeParts } from "./envelope.js";
import { Reader } from "./reader.js";
import { decodeV1 } from "./v1/decode.js";

/**
 * Parses the binary form: reads the version byte (docs/FORMAT.md §2.1 step 1) and hands
 * the rest to that version's decoder. Only v1 exists; a v2 adds `v2/decode.ts` and a case
 * here. Throws only `FormatError`.
 */
export function decodeEnvelope(bytes: Uint8Array): EnvelopeParts {
  if (!(bytes instanceof Uint8Array)) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      "An envelope must be a Uint8Array, Buffer or text-form string.",
    );
  }
  const r = new Reader(bytes);
  // §2.1 step 1: version 0x01, else ENVELOPE_UNSUPPORTED_VERSION (checked before the suite).
  const version = r.u8("version");
  if (version === FORMAT_VERSION) return decodeV1(r);
  throw new FormatError(
    "ENVELOPE_UNSUPPORTED_VERSION",
    `Unsupported envelope format version ${version}; this library reads version ${FORMAT_VERSION}. Upgrade @envelope/core, or check that the value is an Envelope value.`,
    { details: { field: "version", version } },
  );
}
