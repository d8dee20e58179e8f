import { statSync } from "node:fs";
import { countKeyRefs } from "@envelope/batch-rewrap";
import { ConfigError, type KeyProvider, type KeySpec, redactUri, resolveKey } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { type LoadedConfig, loadConfig, specList } from "../config/load.js";
import { addDbOptions } from "../db/job-flags.js";
import { openDb } from "../db/open-db.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output } from "../io.js";
import { handledBy } from "../rotation/handled-by.js";
import { type AgeThresholds, keyAge, parseDays } from "../rotation/key-age.js";
import {
  type ColumnStatus,
  type KeyStatus,
  renderStatus,
  type StatusReport,
  statusExitCode,
} from "../rotation/status-report.js";

interface StatusFlags {
  warnDays?: string;
  dueDays?: string;
  check?: boolean;
  db?: string;
  table?: string;
  column?: string[];
  pk: string;
}

/**
 * `status`: the configured keys with their age against the rotation thresholds and, for a
 * database column, how many values each key protects and which no configured key can open.
 */
export function registerStatusCommand(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const status = program
    .command("status")
    .description(
      "Show the configured keys with their age (warn at 80 days, due at 90; configurable) and, for a database column, how many values each key protects.",
    )
    .option(
      "--warn-days <n>",
      "warn when a key is older than this (default: rotation.warnDays or 80)",
    )
    .option(
      "--due-days <n>",
      "a key is due for rotation at this age (default: rotation.dueDays or 90)",
    )
    .option(
      "--check",
      `exit ${EXIT_CODES.ROTATION_DUE} when the encrypting key is due for rotation, ${EXIT_CODES.STRANDED} when the column holds values no configured key can open (for cron / CI)`,
    );
  addDbOptions(status, false).addHelpText(
    "after",
    "\nExamples:\n  envelope status\n  envelope status --db postgres://localhost/app --table users --column email --json",
  );
  status.action(async (opts: StatusFlags, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags>();
    const config = await loadConfig(flags, ctx.io.env, ctx.io.cwd);
    const thresholds: AgeThresholds = {
      warnDays: parseDays(opts.warnDays, "--warn-days") ?? config.rotation.warnDays,
      dueDays: parseDays(opts.dueDays, "--due-days") ?? config.rotation.dueDays,
    };
    const { keys, providers } = await describeKeys(ctx, config, thresholds);
    const column = await columnStatus(ctx, opts, providers);
    const report: StatusReport = {
      config: config.path,
      sources: config.sources,
      ...thresholds,
      keys,
      column,
      rotationDue: keys.some((k) => k.role === "encrypt" && k.state === "DUE"),
      strandedValues: Object.values(column?.stranded ?? {}).reduce((a, n) => a + n, 0),
    };
    output(ctx.io, Boolean(flags.json), report, () => renderStatus(report));
    const code = statusExitCode(report, Boolean(opts.check));
    if (code !== EXIT_CODES.OK) setExit(code);
  });
}

/** Each configured key (encrypting first) with its age; the providers resolved on the way. */
async function describeKeys(
  ctx: CliContext,
  config: LoadedConfig,
  thresholds: AgeThresholds,
): Promise<{ keys: KeyStatus[]; providers: KeyProvider[] }> {
  const now = Date.now();
  const providers: KeyProvider[] = [];
  const describe = async (
    spec: KeySpec,
    role: "encrypt" | "decrypt",
    i: number,
  ): Promise<KeyStatus> => {
    const label =
      typeof spec === "string"
        ? redactUri(spec)
        : JSON.stringify({
            provider: (spec as { provider?: string }).provider ?? (spec as { id?: string }).id,
          });
    const provider = await resolveKey(spec, `${role}[${i}]`, ctx.io.env);
    providers.push(provider);
    const createdAt =
      typeof spec === "string" ? (config.rotation.keyCreated[spec] ?? fileTime(spec)) : undefined;
    return {
      role,
      key: label,
      provider: provider.id,
      keyRef: provider.keyRef,
      createdAt,
      ...keyAge(createdAt, now, thresholds),
    };
  };
  const keys = [
    ...(await Promise.all(
      specList(config.library.encrypt).map((s, i) => describe(s, "encrypt", i)),
    )),
    ...(await Promise.all(
      specList(config.library.decrypt).map((s, i) => describe(s, "decrypt", i)),
    )),
  ];
  return { keys, providers };
}

/** With --db/--table/--column: values per key reference, and those no configured key opens. */
async function columnStatus(
  ctx: CliContext,
  opts: StatusFlags,
  providers: readonly KeyProvider[],
): Promise<ColumnStatus | undefined> {
  if (!opts.table && !opts.db) return undefined;
  if (!opts.table || !opts.column?.length)
    throw new ConfigError("ENVELOPE_BAD_INPUT", "status for a column needs --table and --column.");
  const db = await openDb(ctx, opts);
  try {
    const scan = await countKeyRefs({
      db,
      table: opts.table,
      primaryKey: opts.pk,
      columns: opts.column,
      signal: ctx.signal,
    });
    return {
      table: opts.table,
      columns: opts.column,
      byKeyRef: scan.byKeyRef,
      nulls: scan.nulls,
      invalid: scan.invalid,
      scanned: scan.scanned,
      stranded: Object.fromEntries(
        Object.entries(scan.byKeyRef).filter(([ref]) => !handledBy(providers, ref)),
      ),
    };
  } finally {
    await db.close();
  }
}

// Age of a local key file when the config has no record: its birth (or change) time.
function fileTime(uri: string): string | undefined {
  if (!uri.startsWith("local-rsa:///") && !uri.startsWith("local-aes:///")) return undefined;
  try {
    const path = decodeURIComponent(uri.replace(/^local-(rsa|aes):\/\//, "").split("?")[0]!);
    const st = statSync(path);
    const born = st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs;
    return new Date(born).toISOString();
  } catch {
    return undefined;
  }
}
