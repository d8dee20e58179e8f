import { EnvelopeError, type KeyProvider, ProviderError, type WrappedKey } from "@envelope/core";
import { printable } from "@envelope/core/internal";
import { PROVIDER_ID } from "./errors.js";
import { ikRequest, unwrapIntermediateKey } from "./master.js";
import {
  type IntermediateKeyRecord,
  recordIntact,
  type StoredKeyRecord,
  sealRecord,
} from "./record.js";
import type { KeyStore } from "./store/types.js";

export interface RotateMasterOptions {
  /** The new master provider; every intermediate key ends up wrapped under its `keyRef`. */
  to: KeyProvider;
  /**
   * Providers that can unwrap the records as they are now (the old master). Not needed
   * for records `to` can rewrap natively inside its KMS (same provider, `rewrap` available).
   */
  from?: KeyProvider | readonly KeyProvider[];
  /** Records rewrapped at once. Default 8. */
  concurrency?: number;
  /** Return a report listing failures instead of throwing. Default false. */
  allowFailures?: boolean;
}

export interface RotateMasterReport {
  store: string;
  /** Intermediate-key records in the store. */
  total: number;
  /** Rewrapped under `to` (natively or by unwrap + wrap). */
  rewrapped: number;
  /** Of those, rewrapped inside the KMS (the key never reached this process). */
  native: number;
  /** Already under `to` (or rewrapped by a concurrent run). */
  unchanged: number;
  failed: { id: string; code: string; message: string }[];
  durationMs: number;
}

/**
 * Re-protects every intermediate key under a new master key. Touches only the key store:
 * records sealed under these intermediate keys are not read or written, so the cost
 * depends on the number of intermediate keys, not of records. Idempotent and safe to
 * rerun; each store write is compare-and-swap. Throws (after trying every record) when
 * some could not be rewrapped, unless `allowFailures`.
 *
 * After it succeeds, configure the hierarchical provider with `master: to`; keep the old
 * master in `decrypt` until every process has restarted with the new configuration.
 *
 * @example
 * const report = await rotateMaster(store, { from: oldMaster, to: newMaster });
 */
export async function rotateMaster(
  store: KeyStore,
  options: RotateMasterOptions,
): Promise<RotateMasterReport> {
  const started = performance.now();
  const { to } = options;
  const from =
    options.from === undefined
      ? []
      : Array.isArray(options.from)
        ? options.from
        : [options.from as KeyProvider];
  const records = await store.list();
  const report: RotateMasterReport = {
    store: store.name,
    total: records.length,
    rewrapped: 0,
    native: 0,
    unchanged: 0,
    failed: [],
    durationMs: 0,
  };
  let next = 0;
  const worker = async () => {
    while (next < records.length) {
      const record = records[next++]!;
      try {
        const outcome = await rotateOne(store, record, to, [to, ...from]);
        if (outcome === "unchanged") report.unchanged++;
        else {
          report.rewrapped++;
          if (outcome === "native") report.native++;
        }
      } catch (error) {
        const e = EnvelopeError.isInstance(error) ? error : undefined;
        report.failed.push({
          id: printable(String(record.id), 64),
          code: e?.code ?? "ENVELOPE_KMS_ERROR",
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, 64));
  await Promise.all(Array.from({ length: concurrency }, worker));
  report.durationMs = performance.now() - started;
  if (report.failed.length > 0 && !options.allowFailures) {
    const ids = report.failed.map((f) => `${f.id} (${f.code})`).join(", ");
    throw new ProviderError(
      report.failed[0]!.code as never,
      `hierarchical: rotateMaster could not rewrap ${report.failed.length} of ${report.total} intermediate keys: ${ids.slice(0, 500)}. The others were rewrapped. Fix the cause (first: ${report.failed[0]!.message.slice(0, 300)}) and run it again; it is idempotent.`,
      {
        details: {
          provider: PROVIDER_ID,
          store: store.name,
          failed: report.failed.length,
          total: report.total,
        },
      },
    );
  }
  return report;
}

async function rotateOne(
  store: KeyStore,
  record: StoredKeyRecord,
  to: KeyProvider,
  unwrappers: readonly KeyProvider[],
): Promise<"unchanged" | "native" | "rewrapped"> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (underTarget(record.master, to)) return "unchanged";
    const { entry, native } = await rewrapEntry(record, to, unwrappers, store.name);
    const updated: IntermediateKeyRecord = sealRecord({
      id: record.id,
      createdAt: record.createdAt,
      master: entry,
      keyCheck: record.keyCheck,
    });
    // No entry is dropped on trust: the new one must open, with `to`, to the key that passes
    // this record's key check, before it replaces the old one (one more master call per IK).
    await verifyReplacement(updated, to, store.name);
    if (await store.update(record.id, record.version, updated))
      return native ? "native" : "rewrapped";
    // Someone changed the record meanwhile (another rotation): start from what is stored now.
    const fresh = await store.get(record.id);
    if (!fresh)
      throw new ProviderError(
        "ENVELOPE_KEY_NOT_FOUND",
        `hierarchical: intermediate key ${record.id} vanished from ${store.name} during rotateMaster. Restore the key store from backup.`,
      );
    record = fresh;
  }
  throw new ProviderError(
    "ENVELOPE_KMS_ERROR",
    `hierarchical: intermediate key ${record.id} kept changing during rotateMaster (compare-and-swap lost 3 times). Run it again when other rotations have finished.`,
  );
}

async function rewrapEntry(
  record: StoredKeyRecord,
  to: KeyProvider,
  unwrappers: readonly KeyProvider[],
  storeName: string,
): Promise<{ entry: WrappedKey; native: boolean }> {
  const request = ikRequest(record.id);
  if (to.rewrap && record.master.providerId === to.id && to.handles(record.master)) {
    if (!recordIntact(record)) await unwrapIntermediateKey(record, [], storeName); // throws the typed corruption error
    return { entry: checked(await to.rewrap(record.master, request), to), native: true };
  }
  const key = await unwrapIntermediateKey(record, unwrappers, storeName);
  try {
    return { entry: checked(await to.wrap(key, request), to), native: false };
  } finally {
    key.fill(0);
  }
}

async function verifyReplacement(
  updated: IntermediateKeyRecord,
  to: KeyProvider,
  storeName: string,
): Promise<void> {
  try {
    (await unwrapIntermediateKey(updated, [to], storeName)).fill(0);
  } catch (error) {
    const code = EnvelopeError.isInstance(error) ? error.code : "ENVELOPE_UNWRAP_FAILED";
    throw new ProviderError(
      code,
      `hierarchical: rotateMaster left intermediate key ${updated.id} under its old master: the entry master "${printable(to.id, 64)}" returned does not open to that key with the same provider (${error instanceof Error ? error.message : "unknown error"}). Check that the new master can unwrap (not encrypt-only, right key), then run it again.`,
      { cause: error, details: { provider: PROVIDER_ID, keyRef: updated.id, master: to.id } },
    );
  }
}

function underTarget(entry: WrappedKey, to: KeyProvider): boolean {
  return entry.providerId === to.id && entry.keyRef === to.keyRef;
}

function checked(entry: WrappedKey, to: KeyProvider): WrappedKey {
  if (
    entry?.providerId !== to.id ||
    !(entry.wrapped instanceof Uint8Array) ||
    entry.wrapped.length === 0
  ) {
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `hierarchical: master provider "${to.id}" returned an invalid wrapped key during rotateMaster. This is a bug in that provider.`,
    );
  }
  return entry;
}
