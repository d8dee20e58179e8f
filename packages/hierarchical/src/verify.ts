import { EnvelopeError, type KeyProvider } from "@envelope/core";
import { printable } from "@envelope/core/internal";
import { unwrapIntermediateKey } from "./master.js";
import { recordIntact } from "./record.js";
import type { KeyStore } from "./store/types.js";

export interface VerifyOptions {
  /** Master providers allowed to unwrap intermediate keys (current and old). */
  masters?: readonly KeyProvider[];
  /** Unwrap every record with the master key (one master call each). Default true when `masters` is given. */
  unwrap?: boolean;
}

export interface VerifyReport {
  store: string;
  total: number;
  /** Records that passed every check that ran. */
  ok: number;
  /** Whether each record was unwrapped (full check) or only checksummed. */
  unwrapped: boolean;
  failures: { id: string; code: string; message: string }[];
  /** Intermediate keys per master key (`provider:keyRef`), to see what a rotation left. */
  byMaster: Record<string, number>;
  oldestCreatedAt: number | undefined;
  newestCreatedAt: number | undefined;
}

/**
 * Checks a key store: every record's checksum and, with `masters`, that it unwraps and
 * the unwrapped key matches its key check. Run it after a restore, before and after a
 * master-key rotation, and on a schedule; alert when `failures` is not empty.
 *
 * @example
 * const report = await verifyKeyStore(store, { masters: [master] });
 * if (report.failures.length > 0) process.exitCode = 1;
 */
export async function verifyKeyStore(
  store: KeyStore,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const masters = options.masters ?? [];
  const unwrap = options.unwrap ?? masters.length > 0;
  const records = await store.list();
  const report: VerifyReport = {
    store: store.name,
    total: records.length,
    ok: 0,
    unwrapped: unwrap,
    failures: [],
    byMaster: {},
    oldestCreatedAt: undefined,
    newestCreatedAt: undefined,
  };
  for (const record of records) {
    const under = `${record.master?.providerId}:${record.master?.keyRef}`;
    report.byMaster[under] = (report.byMaster[under] ?? 0) + 1;
    if (Number.isSafeInteger(record.createdAt)) {
      report.oldestCreatedAt = Math.min(
        report.oldestCreatedAt ?? record.createdAt,
        record.createdAt,
      );
      report.newestCreatedAt = Math.max(
        report.newestCreatedAt ?? record.createdAt,
        record.createdAt,
      );
    }
    try {
      if (unwrap) (await unwrapIntermediateKey(record, masters, store.name)).fill(0);
      else if (!recordIntact(record)) await unwrapIntermediateKey(record, [], store.name);
      report.ok++;
    } catch (error) {
      report.failures.push({
        id: String(record.id),
        code: EnvelopeError.isInstance(error) ? error.code : "ENVELOPE_KMS_ERROR",
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return report;
}

/**
 * Human-readable lines for a verify report (for a CLI or a cron job's log). No secrets.
 *
 * @example
 * console.log(formatVerifyReport(await verifyKeyStore(store, { masters: [master] })));
 */
export function formatVerifyReport(report: VerifyReport): string {
  const lines = [
    `key store ${report.store}: ${report.total} intermediate keys, ${report.ok} ok, ${report.failures.length} failed (${report.unwrapped ? "checksum + unwrap + key check" : "checksum only"})`,
  ];
  // Ids and master references come from the store's records: escaped and capped when shown.
  for (const [master, count] of Object.entries(report.byMaster))
    lines.push(`  under ${printable(master)}: ${count}`);
  if (report.oldestCreatedAt !== undefined) {
    lines.push(
      `  oldest ${new Date(report.oldestCreatedAt).toISOString()}, newest ${new Date(report.newestCreatedAt!).toISOString()}`,
    );
  }
  for (const f of report.failures)
    lines.push(`  FAILED ${printable(f.id)} ${f.code}: ${printable(f.message, 2000)}`);
  return lines.join("\n");
}
