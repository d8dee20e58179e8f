import type { Applied, ValueTransform } from "../engine/transform.js";
import type { RewrapPool } from "./pool.js";

/**
 * `base` (a rewrap transform on the main thread) with `apply` run on the pool's threads,
 * which build the same transform from the same keys. Classifying (no key call), the
 * preflight's `check` and the key counts stay on the main thread.
 */
export function threadedTransform(base: ValueTransform, pool: RewrapPool): ValueTransform {
  return {
    ...base,
    apply: (value, context) => pool.rewrap(value, context).then(applied),
  };
}

const applied = (value: Applied["value"]): Applied => ({ value });
