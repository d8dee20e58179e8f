import { type MigrateRecordsOptions, migrateTable } from "@envelope/batch-rewrap";
import { ConfigError } from "@envelope/core";
import type { PgQueryable } from "@envelope/legacy";
import type { Command } from "commander";
import pg from "pg";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { DEFAULT_ROW_TEMPLATE } from "../config/encryption-context.js";
import { loadKeys, targetKeys } from "../config/load-keys.js";
import { addDbOptions, collect, type DbFlags, jobOptions } from "../db/job-flags.js";
import { openDb } from "../db/open-db.js";
import { checkResume, stopJobOnQuit } from "../db/resume.js";
import { progressBar } from "../progress.js";
import { printReport } from "../report/job-report.js";
import { buildLegacyDecoder, type LegacyFlags } from "./migrate-decoder.js";
import { loadRecordsConfig } from "./migrate-records.js";

const EXAMPLES = `
Legacy key sources (--legacy-key, --pgp-passphrase, --fernet-secret, --fernet-salt, --key-version):
  env:NAME                                   an environment variable
  file:/run/secrets/name                     a file / Docker or Kubernetes secret (chmod 600)
  aws-sm:<name|ARN>[?stage=AWSPREVIOUS][#field]   AWS Secrets Manager (AWS_REGION, default credentials)
  vault-kv:<mount>/<path>[?version=N]#field  Vault KV v2 (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE)

Examples:
  envelope migrate --db $DB --table users --column ssn --from aes-256-cbc --legacy-key-env OLD_ENC_KEY
  envelope migrate --db $DB --table users --column email --from plaintext --apply
  envelope migrate --db $DB --table users --column email --from fernet \\
      --legacy-key aws-sm:app/fernet#FERNET_KEY --legacy-key 'aws-sm:app/fernet?stage=AWSPREVIOUS#FERNET_KEY'
  envelope migrate --db $DB --table users --column email --from fernet \\
      --fernet-secret env:SECRET_KEY --fernet-salt env:ENCRYPTION_SALT --fernet-iterations 100000
  envelope migrate --db $DB --table users --column phone --from pgcrypto --pgp-passphrase env:PGP_PASSPHRASE
  envelope migrate --db $DB --table users --column email --from versioned \\
      --key-version 1=aes-256-cbc:env:KEY_V1 --key-version 2=aes-256-gcm-json:vault-kv:secret/app#key_v2
  envelope migrate --db $DB --table users --column email --from fernet,aes-256-gcm-json --allow-plaintext \\
      --legacy-key fernet=env:FERNET_KEY --legacy-key aes-256-gcm-json=env:OLD_ENC_KEY

  envelope migrate --db $DB --table users --column email,ssn --from aes-256-gcm-json \\
      --legacy-key-env OLD_ENC_KEY --records     # the app reads users through @envelope/records
  envelope migrate --db $DB --table users --column email,ssn --from aes-256-gcm-json \\
      --legacy-key-env OLD_ENC_KEY --records-config ./migrate-records.mjs
      # ... and declares blind indexes / padding: fill email_idx, pad as the app does.
      # migrate-records.mjs exports records = { schema, blindIndex } (the app's own objects)
      # and, where the ORM stores a field under another column name (ssn in ssn_enc),
      # fieldOfColumn: { ssn_enc: "ssn", ssn_bidx: "ssn_idx" }; then --column ssn_enc

Values that already are envelopes are skipped. A value in none of the --from formats is
left unchanged and reported (ENVELOPE_LEGACY_UNRECOGNIZED); plaintext is sealed only with
--allow-plaintext (or --from plaintext). Legacy keys are never printed.`;

/** `envelope migrate`: seal legacy values into envelopes in place (dry run unless --apply). */
export function registerMigrateCommand(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const migrate = program
    .command("migrate")
    .description(
      "Turn legacy values (plaintext, AES-256-GCM JSON, AES-256-CBC iv:ciphertext, Fernet, pgcrypto, key-versioned, or a mix) into envelopes in place. Dry run unless --apply.",
    )
    .requiredOption(
      "--from <formats>",
      "plaintext | aes-256-gcm-json | aes-256-cbc | fernet | pgcrypto | versioned; comma-separated for a mixed column",
    )
    .option(
      "--legacy-key <source>",
      "legacy key source (repeatable: Fernet keys in MultiFernet order, newest first); <format>=<source> for one format of a mixed column",
      collect,
    )
    .option(
      "--legacy-key-env <VAR>",
      "environment variable holding the legacy 32-byte key (hex or base64)",
    )
    .option(
      "--legacy-key-file <path>",
      "file holding the legacy key (hex, base64 or 32 raw bytes; e.g. a Docker secret)",
    )
    .option("--allow-plaintext", "also seal values in none of the --from formats as plaintext")
    .option("--fernet-secret <source>", "PBKDF2 Fernet key: the password (e.g. env:SECRET_KEY)")
    .option("--fernet-salt <source>", "PBKDF2 Fernet key: the salt (e.g. env:ENCRYPTION_SALT)")
    .option("--fernet-salt-encoding <enc>", "utf8 | hex | base64 (default utf8)")
    .option("--fernet-iterations <n>", "PBKDF2 iterations, exactly as the app used")
    .option(
      "--fernet-output <raw|hex>",
      "how the app turned the derived bytes into the key (default raw)",
    )
    .option(
      "--pgp-passphrase <source>",
      "pgcrypto: the pgp_sym_encrypt passphrase (sent only as a bound parameter)",
    )
    .option(
      "--pgcrypto-db <url>",
      "pgcrypto: PostgreSQL to decrypt in (default: --db when it is PostgreSQL)",
    )
    .option(
      "--key-version <v=cipher:source>",
      "versioned: one legacy key per version (repeatable)",
      collect,
    )
    .option(
      "--version-prefix <regex>",
      'versioned: prefix with one capture group (default "^v(\\d+):")',
    )
    .option("--version-column <name>", "versioned: the column holding each row's key version")
    .option(
      "--records [type]",
      "write what @envelope/records reads (its one-byte type tag before the value): for a column an app reads through createRecordCipher or the Sequelize / TypeORM / Drizzle / Prisma integrations. type: string (default) or bytes",
    )
    .option(
      "--records-config <module>",
      "the app's @envelope/records config (a .mjs/.js/.ts module exporting records = { schema, blindIndex, fieldOfColumn? }): migrated values get the schema's padding and their blind index columns are filled in the same write, as the app writes them; fieldOfColumn maps a column to the field the app's ORM stores in it, e.g. { ssn_enc: \"ssn\" } (implies --records)",
    )
    .option(
      "--to <uri>",
      "key URI(s) to seal under instead of the config's encrypting keys",
      collect,
    );
  addDbOptions(migrate).addHelpText("after", EXAMPLES);
  migrate.action(async (opts: MigrateFlags, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags & DbFlags>();
    const keys = await loadKeys(ctx, flags);
    const to = await targetKeys(ctx, keys, opts.to);
    let pool: pg.Pool | undefined;
    const pgPool = async (): Promise<PgQueryable> => {
      const url = opts.pgcryptoDb ?? opts.db ?? ctx.io.env.ENVELOPE_DB_URL;
      if (!url || !/^postgres(ql)?:\/\//.test(url)) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          "--from pgcrypto decrypts in PostgreSQL: give --pgcrypto-db postgres://… when --db is not PostgreSQL.",
          { details: { field: "pgcryptoDb" } },
        );
      }
      pool ??= new pg.Pool({ connectionString: url, max: 8 });
      return pool;
    };
    try {
      const records = opts.recordsConfig ? await recordsOptions(opts, ctx.io.cwd) : undefined;
      // With --records-config the engine lays values out as records fields itself.
      const from = await buildLegacyDecoder(
        records ? { ...opts, records: undefined } : opts,
        ctx.io.env,
        pgPool,
      );
      const db = await openDb(ctx, opts);
      let bar: ReturnType<typeof progressBar> | undefined;
      let offQuit: (() => void) | undefined;
      try {
        const { jobId, prior } = await checkResume(ctx, flags, db, {
          kind: "migrate",
          to,
          legacy: from.format,
        });
        const quit = stopJobOnQuit(db, flags, jobId);
        offQuit = quit.off;
        bar = progressBar(ctx.io, Boolean(flags.json), "migrate");
        const { context, ...job } = await jobOptions(ctx, opts, quit.db, jobId, bar.onProgress);
        const report = await migrateTable({
          ...job,
          ...(records ? { records } : { context }),
          to,
          from,
        });
        bar.stop();
        setExit(printReport(ctx, Boolean(flags.json), report, prior));
      } finally {
        offQuit?.();
        bar?.stop();
        await db.close();
      }
    } finally {
      await pool?.end();
    }
  });
}

type MigrateFlags = DbFlags & LegacyFlags & { pgcryptoDb?: string; recordsConfig?: string };

/** `--records-config`: the app's schema and blind indexer; `--records bytes` sets the value type. */
async function recordsOptions(opts: MigrateFlags, cwd: string): Promise<MigrateRecordsOptions> {
  if (opts.context !== DEFAULT_ROW_TEMPLATE) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "--records-config sets each value's context to the record cipher's { table, column, id }: drop --context.",
      { details: { field: "context" } },
    );
  }
  const records = await loadRecordsConfig(opts.recordsConfig!, cwd);
  if (opts.records === "string" || opts.records === "bytes")
    return { ...records, valueType: records.valueType ?? opts.records };
  return records;
}
