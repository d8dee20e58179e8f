import { inspect } from "node:util";
import type { WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";

/** A data key and its wrapped copies, for sealing several values under one key. */
export interface DataKeyMaterials {
  /** 32 bytes. Secret: the holder zeroes it when done. Not enumerable, never printed. */
  readonly dataKey: Buffer;
  readonly entries: readonly WrappedKey[];
}

/**
 * A data key and the entries it is wrapped in, as `seal` consumes them (fresh materials,
 * or reused ones from the data-key cache). The data key belongs to whoever made it.
 */
export interface EncryptionMaterials {
  readonly dataKey: Buffer;
  readonly entries: readonly WrappedKey[];
  /** 0x03 when the generating provider asked for suite 0x03 (FORMAT.md §15); else 0x01. */
  readonly suite?: number;
}

const REDACTED = "[redacted]";

/**
 * Materials whose `dataKey` is reachable as a property but shows on no surface: it is not
 * enumerable (spread, `Object.keys`, generic serializers skip it), `JSON.stringify` and
 * `util.inspect` (also `%o` and `showHidden`) print `[redacted]` and entry ids only.
 */
export function dataKeyMaterials(
  dataKey: Buffer,
  entries: readonly WrappedKey[],
): DataKeyMaterials {
  const describe = () => ({
    dataKey: REDACTED,
    entries: entries.map((e) => ({
      provider: printable(e.providerId),
      keyRef: printable(e.keyRef),
      wrappedBytes: e.wrapped.length,
    })),
  });
  const materials = { entries } as DataKeyMaterials;
  Object.defineProperties(materials, {
    dataKey: { value: dataKey, enumerable: false },
    toJSON: { value: describe, enumerable: false },
    [inspect.custom]: {
      value: (_depth: number, options: { stylize?: unknown }, show = inspect) =>
        `DataKeyMaterials ${show(describe(), { ...(options as object), customInspect: true })}`,
      enumerable: false,
    },
  });
  return materials;
}
