import { dirname, resolve } from "node:path";
import { ConfigError, type KeySpec, redactUri, resolveKey } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { editableConfig } from "../config/editable.js";
import { specList } from "../config/load.js";
import { readJsonConfig, writeJsonConfig } from "../config/write.js";
import { addDbOptions } from "../db/job-flags.js";
import { dbFlagHint, openDb } from "../db/open-db.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";
import { addGuardOptions, type GuardFlags, refuseDuringJobs } from "../rotation/job-guard.js";
import { newLocalKey } from "./local-key.js";

/** `rotate`: a new encrypting key in the JSON config; the old one stays for decryption. */
export function registerRotateCommand(program: Command, ctx: CliContext): void {
  const rotate = program
    .command("rotate")
    .description(
      "Add a new key and make it the encrypting one in the config file; the old key stays for decryption. Then run `rewrap`.",
    )
    .option(
      "--dir <dir>",
      "folder for the new local key (default: rotation.keyDir from the config, or ./keys)",
    )
    .option("--name <name>", "file base name of the new key")
    .option("--bits <n>", "modulus length", "3072")
    .option(
      "--passphrase-env <VAR>",
      "encrypt the new private key with the passphrase in this env var",
    )
    .option(
      "--to <uri>",
      "switch to this existing key URI (e.g. a KMS key) instead of generating a local one",
    );
  addGuardOptions(addDbOptions(rotate, false))
    .addHelpText(
      "after",
      [
        "",
        "With a database (--db or ENVELOPE_DB_URL), rotate first checks the rewrap job state tables:",
        `exit ${EXIT_CODES.JOB_IN_PROGRESS} (config unchanged) while a rewrap/migrate job is running or incomplete`,
        "(all tables, or only --table/--column if given): finish or resume it first, so its target does not change under it.",
        "",
        "Example:",
        "  envelope rotate --db $DB && envelope rewrap --db $DB --table users --column email --apply",
      ].join("\n"),
    )
    .action(
      async (
        opts: {
          dir?: string;
          name?: string;
          bits: string;
          passphraseEnv?: string;
          to?: string;
          db?: string;
          table?: string;
          column?: string[];
        } & GuardFlags,
        cmd: Command,
      ) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const path = editableConfig("rotate", flags, ctx.io.env, ctx.io.cwd);
        const file = readJsonConfig(path);
        const previous = specList(file.encrypt as KeySpec | KeySpec[] | undefined);
        if (opts.to) {
          // Fail now, not at the next encrypt; and compare keys, not how they are written
          // (a relative path, the public half of the same RSA key).
          const target = await resolveKey(opts.to, "--to", ctx.io.env);
          const current =
            previous.length === 1
              ? await resolveKey(previous[0]!, "encrypt", ctx.io.env).catch(() => undefined)
              : undefined;
          if (current && `${current.id}:${current.keyRef}` === `${target.id}:${target.keyRef}`)
            throw new ConfigError(
              "ENVELOPE_BAD_INPUT",
              `rotate: ${redactUri(opts.to)} is the key that already encrypts in ${path} (${shown(target.id)}:${shown(target.keyRef)}). Nothing was changed.`,
              { details: { field: "to" } },
            );
        }
        let forced: { jobId: string }[] = [];
        if (opts.db ?? ctx.io.env.ENVELOPE_DB_URL) {
          // Before anything is written: no new key file, no config change while a job runs.
          const db = await openDb(ctx, opts);
          try {
            forced = await refuseDuringJobs(
              ctx,
              db,
              "rotate",
              { ...(opts.table ? { table: opts.table } : {}), columns: opts.column ?? [] },
              opts,
            );
          } finally {
            await db.close();
          }
        }
        const rotation = {
          warnDays: 80,
          dueDays: 90,
          keyCreated: {},
          ...((file.rotation as Record<string, unknown>) ?? {}),
        } as { keyDir?: string; keyCreated: Record<string, string> };
        let uri: string;
        let created: Record<string, unknown> = {};
        if (opts.to) {
          uri = opts.to;
        } else {
          // A keyDir from the config is relative to the config file; --dir to the current directory.
          const dir = opts.dir ?? resolve(dirname(path), rotation.keyDir ?? "./keys");
          const key = await newLocalKey(ctx, { ...opts, dir });
          uri = key.uri;
          created = key;
        }
        const decrypt = [...previous, ...specList(file.decrypt as KeySpec[] | undefined)].filter(
          (s, i, all) => s !== uri && all.indexOf(s) === i,
        );
        rotation.keyCreated = { ...rotation.keyCreated, [uri]: new Date().toISOString() };
        writeJsonConfig(path, { ...file, encrypt: uri, decrypt, rotation });
        // The next steps with what this command was given filled in.
        const on = [
          dbFlagHint(ctx, opts),
          `--table ${opts.table ? shown(opts.table) : "<table>"}`,
          `--column ${opts.column?.length ? shown(opts.column.join(",")) : "<column>"}`,
        ]
          .filter(Boolean)
          .join(" ");
        // The old key as `status` shows it (provider:keyRef, a fingerprint, not a secret).
        const oldKey = previous[0]
          ? await resolveKey(previous[0], "encrypt", ctx.io.env).then(
              (p) => `${shown(p.id)}:${shown(p.keyRef)}`,
              () => "<old key>",
            )
          : "<old key>";
        output(
          ctx.io,
          Boolean(flags.json),
          {
            config: path,
            encrypt: uri,
            decrypt,
            ...created,
            forcedPastJobs: forced.map((j) => j.jobId),
          },
          () =>
            [
              `${path}: new values are now sealed under ${redactUri(uri)}`,
              `old key(s) kept for decryption: ${decrypt.map((s) => (typeof s === "string" ? redactUri(s) : JSON.stringify(s))).join(", ") || "none"}`,
              "Next: rewrap existing data, check, then retire the old key (refused while any value still needs it):",
              `  envelope rewrap ${on}          # dry run`,
              `  envelope rewrap ${on} --apply`,
              `  envelope status --check ${on}`,
              `  envelope retire ${oldKey} ${on}`,
            ].join("\n"),
        );
      },
    );
}
