import { tag } from "../tag.js";
import type { LegacyDecoder } from "../types.js";

/**
 * Values stored unencrypted: text as UTF-8, bytes as is. `matches` accepts anything, so
 * in a mixed column it is only ever the last resort, and only when configured.
 *
 * @example
 * migrateTable({ …, from: plaintextDecoder() });
 */
export function plaintextDecoder(): LegacyDecoder {
  return tag({
    format: "plaintext",
    matches: () => true,
    decode: (v: string | Buffer) =>
      typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v),
  });
}
