import { resolve } from "node:path";
import { ConfigError } from "@envelope/core";
import {
  fileKeyStore,
  formatVerifyReport,
  type KeyStore,
  postgresKeyStore,
  verifyKeyStore,
} from "@envelope/hierarchical";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { loadKeys } from "../config/load-keys.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output } from "../io.js";

interface VerifyFlags {
  file?: string;
  pg?: string;
  table?: string;
  unwrap: boolean;
}

/**
 * `envelope keystore verify`: checks a hierarchical-mode key store so that a lost or
 * corrupted intermediate key is found by a scheduled job, not by the first failed read.
 */
export function registerKeystoreCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const keystore = program
    .command("keystore")
    .description("Hierarchical key mode: check the intermediate-key store.");
  keystore
    .command("verify")
    .description(
      "Checksum every intermediate key and (by default) unwrap it with the configured master keys. Exit code 3 if any record fails.",
    )
    .option("--file <path>", "a JSON file key store")
    .option("--pg <url>", "a PostgreSQL key store (postgres://…)")
    .option("--table <name>", "PostgreSQL table name", "envelope_intermediate_keys")
    .option("--no-unwrap", "checksums only: no master-key calls")
    .addHelpText(
      "after",
      "\nExamples:\n  envelope keystore verify --file /var/lib/app/envelope-keys.json\n  envelope keystore verify --pg postgres://app@db:5432/app --json",
    )
    .action(async (opts: VerifyFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      if (Boolean(opts.file) === Boolean(opts.pg)) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          "keystore verify: give exactly one of --file or --pg.",
          {
            details: { field: "file/pg" },
          },
        );
      }
      const keys = opts.unwrap ? await loadKeys(ctx, flags) : undefined;
      const masters = keys ? [...keys.encrypt, ...keys.decrypt] : [];
      const { store, close } = await openStore(ctx, opts);
      try {
        const report = await verifyKeyStore(store, { masters, unwrap: opts.unwrap });
        output(ctx.io, Boolean(flags.json), report, () => formatVerifyReport(report));
        if (report.failures.length > 0) setExit(EXIT_CODES.DATA);
      } finally {
        await close();
      }
    });
}

async function openStore(
  ctx: CliContext,
  opts: VerifyFlags,
): Promise<{ store: KeyStore; close: () => Promise<void> }> {
  if (opts.file) {
    return {
      store: await fileKeyStore({ path: resolve(ctx.io.cwd, opts.file) }),
      close: async () => {},
    };
  }
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: opts.pg, max: 2 });
  try {
    // Never create the table here: a missing store must be reported, not replaced.
    const store = await postgresKeyStore({
      client: pool,
      createTable: false,
      ...(opts.table ? { table: opts.table } : {}),
    });
    return { store, close: () => pool.end() };
  } catch (error) {
    await pool.end();
    throw error;
  }
}
