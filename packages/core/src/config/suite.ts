import { ConfigError } from "../errors.js";
import {
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
} from "../format/constants.js";

/**
 * The suite a client writes unsigned values in: `1` (HKDF-SHA256, the default, readable
 * by every version) or `3` (one SHA-512 call, FORMAT.md §15: ~5–8 µs less CPU per value
 * whose data key is not cached, but readers older than suite 0x03 refuse it). A signing
 * client writes suite 0x02 whatever this says.
 */
export type WriterSuite = 1 | 3;

/** The suite byte from a `suite` option (undefined = 1), or a typed error for anything else. */
export function writerSuite(option: unknown, field = "suite"): number {
  if (option === undefined || option === 1) return SUITE_AES256GCM_HKDF_SHA256_COMMIT;
  if (option === 3) return SUITE_AES256GCM_SHA512_COMMIT;
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `${field} must be 1 (HKDF-SHA256, the default) or 3 (one-step SHA-512, FORMAT.md §15; turn it on only once every reader knows suite 0x03).`,
    { details: { field } },
  );
}

/** `ENVELOPE_SUITE`: "1" or "3"; empty or unset = the default. */
export function suiteFromEnv(value: string | undefined): WriterSuite | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  const suite = Number(text);
  writerSuite(suite, "ENVELOPE_SUITE");
  return suite as WriterSuite;
}
