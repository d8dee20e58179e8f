import { EXIT_CODES } from "../exit-codes.js";
import { shown } from "../io.js";
import type { KeyAgeState } from "./key-age.js";

/** One configured key in the `status` report. */
export interface KeyStatus {
  role: "encrypt" | "decrypt";
  /** The key spec as configured, secrets redacted. */
  key: string;
  provider: string;
  keyRef: string;
  createdAt: string | undefined;
  ageDays: number | undefined;
  state: KeyAgeState;
}

/** The `status` view of one table's encrypted column(s). */
export interface ColumnStatus {
  table: string;
  columns: string[];
  byKeyRef: Record<string, number>;
  nulls: number;
  invalid: Record<string, number>;
  scanned: number;
  /** provider:keyRef → values no configured key can open. */
  stranded: Record<string, number>;
}

/** What `status` prints (as is under --json). */
export interface StatusReport {
  config: string | undefined;
  sources: string[];
  warnDays: number;
  dueDays: number;
  keys: KeyStatus[];
  column: ColumnStatus | undefined;
  /** The encrypting key is past its due age. */
  rotationDue: boolean;
  /** Values under keys no configured key can open. */
  strandedValues: number;
}

/** `status --check` exit code: stranded values beat a rotation due; without --check always OK. */
export function statusExitCode(report: StatusReport, check: boolean): number {
  if (!check) return EXIT_CODES.OK;
  if (report.strandedValues > 0) return EXIT_CODES.STRANDED;
  if (report.rotationDue) return EXIT_CODES.ROTATION_DUE;
  return EXIT_CODES.OK;
}

/** The human text of `status`. Key references read from stored values are escaped and capped. */
export function renderStatus(report: StatusReport): string {
  const { keys, column, warnDays, dueDays } = report;
  const lines = [
    `config: ${report.sources.join(" + ") || "none"}   (warn at ${warnDays} days, due at ${dueDays})`,
  ];
  for (const k of keys) {
    const age = k.ageDays === undefined ? "age unknown" : `${k.ageDays} day(s) old`;
    // Age matters for the key that encrypts; an old decrypt-only key is waiting to be
    // retired once no value needs it, and rotating would not change that.
    const note =
      k.role !== "encrypt" && k.state !== "ok" && k.state !== "unknown age"
        ? "  ← old decrypt key: rewrap its values, then `envelope retire` it"
        : k.state === "DUE"
          ? "  ← DUE: run `envelope rotate`"
          : k.state === "WARN"
            ? "  ← rotate soon"
            : "";
    lines.push(
      `  ${k.role.padEnd(7)} ${shown(k.provider)}:${shown(k.keyRef)}  ${age}  ${shown(k.key)}${note}`,
    );
  }
  if (column) {
    lines.push(
      `${column.table}.${column.columns.join(",")}: ${column.scanned} rows, ${column.nulls} null value(s)`,
    );
    for (const [ref, n] of Object.entries(column.byKeyRef)) {
      lines.push(
        `  ${shown(ref)}: ${n} value(s)${column.stranded[ref] === undefined ? "" : "  ← NOT in the config: these cannot be decrypted"}`,
      );
    }
    if (report.strandedValues > 0)
      lines.push(
        `STRANDED: ${report.strandedValues} value(s) are under keys no configured key can open. Put the missing key back in \`decrypt\` (from its backup) before anything else.`,
      );
    for (const [code, n] of Object.entries(column.invalid))
      lines.push(`  not an envelope (${shown(code)}): ${n} value(s)`);
  }
  return lines.join("\n");
}
