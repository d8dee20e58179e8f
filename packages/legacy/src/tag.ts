import { inspect } from "node:util";

/**
 * Gives a decoder a `toJSON` / `util.inspect` that show only its format: decoders close
 * over legacy keys, which must never reach a log line or a JSON dump.
 */
export function tag<D extends { format: string }>(decoder: D): D {
  return Object.assign(decoder, {
    toJSON: () => ({ format: decoder.format }),
    [inspect.custom]: () => `LegacyDecoder(${decoder.format})`,
  });
}
