import type { WrappedKey } from "../format/envelope.js";

/** What the planner needs to know of a target key: no KMS call is made while planning. */
export interface RewrapTarget {
  readonly id: string;
  readonly keyRef: string;
  handles(entry: WrappedKey): boolean;
  /** A function when the KMS can rewrap an entry itself (the data key never leaves it). */
  readonly rewrap?: unknown;
}

/** How a target gets its entry when it has none to keep (or the one it has is not proven). */
export type NewEntry =
  /** The target's KMS rewraps `source`, an entry of the same provider. */
  | { readonly action: "native"; readonly source: WrappedKey }
  /** The data key is unwrapped here (commitment-checked) and wrapped under the target. */
  | { readonly action: "local" };

/** The step for one target, in target order. */
export type RewrapStep<T extends RewrapTarget = RewrapTarget> =
  | {
      readonly action: "keep";
      readonly target: T;
      /** The entry already under this target. */
      readonly entry: WrappedKey;
      /** Whether `entry` must be proven to open to the data key before it is kept. */
      readonly proof: boolean;
      /** What replaces `entry` when it cannot be proven. */
      readonly otherwise: NewEntry;
    }
  | ({ readonly target: T } & NewEntry);

export interface RewrapPlanOptions {
  /** Make new entries even where one already names the target key. */
  force?: boolean | undefined;
  /** Keep the entries no target replaces. */
  keep?: boolean | undefined;
}

/**
 * The rewrap of one envelope, decided from its entries and the targets alone: per target
 * keep (its entry is already under that key), native (its KMS rewraps an entry of the
 * same provider) or local (unwrap here, wrap again). An entry kept beside dropped ones
 * must be proven first: no entry is dropped until those that stay open to the same key.
 *
 * @example
 * planRewrap(parts.entries, [newKey], {}) // [{ action: "native", target: newKey, source }]
 */
export function planRewrap<T extends RewrapTarget>(
  entries: readonly WrappedKey[],
  targets: readonly T[],
  options: RewrapPlanOptions = {},
): RewrapStep<T>[] {
  const current = targets.map((target) =>
    options.force
      ? undefined
      : entries.find((e) => e.providerId === target.id && e.keyRef === target.keyRef),
  );
  // Entries kept as they are need proof only when others are dropped beside them.
  const drops = !options.keep && entries.some((e) => !current.includes(e));
  return targets.map((target, i) => {
    const entry = current[i];
    const source =
      typeof target.rewrap === "function"
        ? entries.find((e) => e !== entry && e.providerId === target.id && target.handles(e))
        : undefined;
    const otherwise: NewEntry = source ? { action: "native", source } : { action: "local" };
    if (entry) return { action: "keep", target, entry, proof: drops, otherwise };
    return { target, ...otherwise };
  });
}

/**
 * The entries of the rewrapped envelope: the new ones, then (with `keep`) the old ones
 * whose key no new entry names.
 */
export function rewrappedEntries(
  old: readonly WrappedKey[],
  fresh: readonly WrappedKey[],
  keep: boolean | undefined,
): WrappedKey[] {
  const kept = keep
    ? old.filter((e) => !fresh.some((f) => f.providerId === e.providerId && f.keyRef === e.keyRef))
    : [];
  return [...fresh, ...kept];
}
