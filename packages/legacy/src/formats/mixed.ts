import { ConfigError } from "@envelope/core";
import { unrecognized } from "../errors.js";
import { tag } from "../tag.js";
import type {
  AnyLegacyDecoder,
  AsyncLegacyDecoder,
  LegacyDecoder,
  LegacyFormat,
  LegacyRow,
} from "../types.js";
import { plaintextDecoder } from "./plaintext.js";

export interface MixedOptions<D extends AnyLegacyDecoder> {
  /** The legacy formats the column may hold, tried in this order by their `matches`. */
  decoders: readonly D[];
  /**
   * Treat a value that no decoder matches as plaintext. Default false: such a value is an
   * `ENVELOPE_LEGACY_UNRECOGNIZED` error (a migration records it and leaves it as is).
   */
  plaintext?: boolean;
}

/** A decoder for a column that holds several legacy formats at once. */
export type MixedDecoder<D extends AnyLegacyDecoder = LegacyDecoder> = D & {
  /** The format a value would be decoded as (undefined: unrecognized). */
  formatOf(value: string | Buffer): LegacyFormat | undefined;
};

/**
 * A column written by several generations of code (an interrupted migration, or app
 * instances writing old and new formats during a rollout): each value goes to the first
 * decoder whose shape test (`matches`) accepts it. A value that looks like a format but
 * does not decode is an error for that format, never passed on to the next one or to
 * plaintext. Plaintext is accepted only when `plaintext: true`.
 *
 * @example
 * const from = mixedDecoder({ decoders: [fernetDecoder([k]), gcmJsonDecoder(old)], plaintext: true });
 */
export function mixedDecoder(options: MixedOptions<LegacyDecoder>): MixedDecoder<LegacyDecoder>;
export function mixedDecoder(
  options: MixedOptions<AnyLegacyDecoder>,
): MixedDecoder<LegacyDecoder> | MixedDecoder<AsyncLegacyDecoder>;
export function mixedDecoder(
  options: MixedOptions<AnyLegacyDecoder>,
): MixedDecoder<LegacyDecoder> | MixedDecoder<AsyncLegacyDecoder> {
  const decoders = [...(options.decoders ?? [])];
  if (decoders.some((d) => d.format === "plaintext")) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "mixed: plaintext matches every value; allow it with { plaintext: true } so it is tried last.",
      { details: { field: "decoders" } },
    );
  }
  if (decoders.length === 0 && !options.plaintext) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "mixed: give at least one legacy format.", {
      details: { field: "decoders" },
    });
  }
  const plain = options.plaintext ? plaintextDecoder() : undefined;
  const pick = (value: string | Buffer): AnyLegacyDecoder | undefined =>
    decoders.find((d) => d.matches(value)) ?? plain;
  const formats = decoders.map((d) => d.format);
  const columns = [...new Set(decoders.flatMap((d) => d.columns ?? []))];
  const base = {
    format: "mixed" as const,
    ...(columns.length > 0 ? { columns } : {}),
    matches: (value: string | Buffer) => pick(value) !== undefined,
    formatOf: (value: string | Buffer) => pick(value)?.format,
  };
  const decode = (value: string | Buffer, row?: LegacyRow) => {
    const d = pick(value);
    if (!d) throw unrecognized(plain ? [...formats, "plaintext"] : formats);
    return d.decode(value, row);
  };
  if (decoders.some((d) => "async" in d && d.async))
    return tag({ ...base, async: true as const, decode: async (v, r) => decode(v, r) });
  return tag({ ...base, decode: (v, r) => decode(v, r) as Buffer });
}
