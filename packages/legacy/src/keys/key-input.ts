import { ConfigError } from "@envelope/core";
import { secretCopy } from "@envelope/core/internal";

/** Key bytes handed to a decoder (load them with `loadLegacyKey` / `loadSecret`). */
export type KeyInput = Uint8Array;

/** Checks the length and takes a private copy, so the caller may zero its buffer. */
export function keyBytes(key: KeyInput, length: number, format: string): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== length) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `The ${format} legacy key must be ${length} bytes; load it with loadLegacyKey({ env | file | bytes }).`,
      { details: { field: "legacyKey" } },
    );
  }
  return secretCopy(key);
}
