import { existsSync, statSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { countKeyRefs } from "@envelope/batch-rewrap";
import { ConfigError, type KeyProvider, type KeySpec, redactUri, resolveKey } from "@envelope/core";
import { generateKeyPair, type ModulusLength } from "@envelope/local-rsa";
import type { Command } from "commander";
import { loadConfig, specList } from "../config/load.js";
import { readJsonConfig, writeJsonConfig } from "../config/write.js";
import type { CliContext, GlobalFlags } from "../context.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";
import { addDbOptions, openDb } from "./db.js";

const DAY = 86_400_000;

async function newLocalKey(
  ctx: CliContext,
  opts: { dir: string; name?: string; bits: string; passphraseEnv?: string },
) {
  const passphrase = opts.passphraseEnv ? ctx.io.env[opts.passphraseEnv] : undefined;
  if (opts.passphraseEnv && !passphrase) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `--passphrase-env ${opts.passphraseEnv}: the variable is not set.`,
      { details: { field: "passphrase-env" } },
    );
  }
  const pair = await generateKeyPair({
    dir: resolve(ctx.io.cwd, opts.dir),
    ...(opts.name ? { name: opts.name } : {}),
    modulusLength: Number(opts.bits) as ModulusLength,
    ...(passphrase ? { passphrase } : {}),
  });
  const query = opts.passphraseEnv ? `?passphrase-env=${opts.passphraseEnv}` : "";
  return {
    ...pair,
    uri: `local-rsa://${pair.privateKeyPath}${query}`,
    createdAt: new Date().toISOString(),
  };
}

export function registerKeyCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  program
    .command("keygen")
    .description(
      "Generate a local RSA key pair (private key 0600, public key beside it) for the local-rsa provider.",
    )
    .option("--dir <dir>", "folder for the PEM files (created 0700 if missing)", "./keys")
    .option(
      "--name <name>",
      "file base name (default envelope-rsa-<yyyymmdd-hhmmss-mmm>-<random>: unique, sorts by time)",
    )
    .option("--bits <n>", "modulus length: 3072 or 4096 (2048 is accepted for tests)", "3072")
    .option("--passphrase-env <VAR>", "encrypt the private key with the passphrase in this env var")
    .option(
      "--init",
      "also write envelope.config.json encrypting with this key (refuses to overwrite one)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  envelope keygen --init                # ./keys/envelope-rsa-….pem + envelope.config.json\n  envelope keygen --dir /run/secrets --name enc_key",
    )
    .action(
      async (
        opts: { dir: string; name?: string; bits: string; passphraseEnv?: string; init?: boolean },
        cmd: Command,
      ) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const configPath = resolve(ctx.io.cwd, flags.config ?? "envelope.config.json");
        if (opts.init && existsSync(configPath)) {
          throw new ConfigError(
            "ENVELOPE_BAD_CONFIG",
            `${configPath} exists; use \`envelope rotate\` to add a key to it.`,
            { details: { field: "config" } },
          );
        }
        const key = await newLocalKey(ctx, opts);
        if (opts.init) {
          writeJsonConfig(configPath, {
            encrypt: key.uri,
            decrypt: [],
            rotation: {
              warnDays: 80,
              dueDays: 90,
              // Relative to the config file, so the project folder can move.
              keyDir: relative(dirname(configPath), resolve(ctx.io.cwd, opts.dir)) || ".",
              keyCreated: { [key.uri]: key.createdAt },
            },
          });
        }
        output(
          ctx.io,
          Boolean(flags.json),
          { ...key, config: opts.init ? configPath : undefined },
          () =>
            [
              `private key  ${key.privateKeyPath}  (0600: keep it secret, back it up)`,
              `public key   ${key.publicKeyPath}  (for encrypt-only services)`,
              `key ref      ${key.keyRef}`,
              `key URI      ${key.uri}`,
              opts.init
                ? `config       ${configPath} now encrypts with this key`
                : `Use it: ENVELOPE_ENCRYPT_KEYS=${key.uri}`,
            ].join("\n"),
        );
      },
    );

  program
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
    )
    .addHelpText(
      "after",
      "\nExample:\n  envelope rotate && envelope rewrap --db $DB --table users --column email --apply",
    )
    .action(
      async (
        opts: { dir?: string; name?: string; bits: string; passphraseEnv?: string; to?: string },
        cmd: Command,
      ) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const path = resolve(ctx.io.cwd, flags.config ?? "envelope.config.json");
        if (!path.endsWith(".json"))
          throw new ConfigError(
            "ENVELOPE_BAD_CONFIG",
            "rotate edits JSON config files only; edit your .js/.ts config by hand.",
          );
        const file = readJsonConfig(path);
        const rotation = {
          warnDays: 80,
          dueDays: 90,
          keyCreated: {},
          ...((file.rotation as Record<string, unknown>) ?? {}),
        } as { keyDir?: string; keyCreated: Record<string, string> };
        let uri: string;
        let created: Record<string, unknown> = {};
        if (opts.to) {
          await resolveKey(opts.to, "--to", ctx.io.env); // fail now, not at the next encrypt
          uri = opts.to;
        } else {
          // A keyDir from the config is relative to the config file; --dir to the current directory.
          const dir = opts.dir ?? resolve(dirname(path), rotation.keyDir ?? "./keys");
          const key = await newLocalKey(ctx, { ...opts, dir });
          uri = key.uri;
          created = key;
        }
        const previous = specList(file.encrypt as KeySpec | KeySpec[] | undefined);
        const decrypt = [...previous, ...specList(file.decrypt as KeySpec[] | undefined)].filter(
          (s, i, all) => s !== uri && all.indexOf(s) === i,
        );
        rotation.keyCreated = { ...rotation.keyCreated, [uri]: new Date().toISOString() };
        writeJsonConfig(path, { ...file, encrypt: uri, decrypt, rotation });
        output(
          ctx.io,
          Boolean(flags.json),
          { config: path, encrypt: uri, decrypt, ...created },
          () =>
            [
              `${path}: new values are now sealed under ${redactUri(uri)}`,
              `old key(s) kept for decryption: ${decrypt.map((s) => (typeof s === "string" ? redactUri(s) : JSON.stringify(s))).join(", ") || "none"}`,
              "Next: rewrap existing data, check, then retire the old key (refused while any value still needs it):",
              "  envelope rewrap --db <url> --table <table> --column <column>          # dry run",
              "  envelope rewrap --db <url> --table <table> --column <column> --apply",
              "  envelope status --check --db <url> --table <table> --column <column>",
              "  envelope retire <old key> --db <url> --table <table> --column <column>",
            ].join("\n"),
        );
      },
    );

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
  status.action(
    async (
      opts: {
        warnDays?: string;
        dueDays?: string;
        check?: boolean;
        db?: string;
        table?: string;
        column?: string[];
        pk: string;
      },
      cmd: Command,
    ) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = await loadConfig(flags, ctx.io.env, ctx.io.cwd);
      const warnDays = days(opts.warnDays, "--warn-days") ?? config.rotation.warnDays;
      const dueDays = days(opts.dueDays, "--due-days") ?? config.rotation.dueDays;
      const now = Date.now();
      const providers: KeyProvider[] = [];
      const describe = async (spec: KeySpec, role: "encrypt" | "decrypt", i: number) => {
        const label =
          typeof spec === "string"
            ? redactUri(spec)
            : JSON.stringify({
                provider: (spec as { provider?: string }).provider ?? (spec as { id?: string }).id,
              });
        const provider = await resolveKey(spec, `${role}[${i}]`, ctx.io.env);
        providers.push(provider);
        const createdAt =
          typeof spec === "string"
            ? (config.rotation.keyCreated[spec] ?? fileTime(spec))
            : undefined;
        // Thresholds compare the exact (fractional) age; `ageDays` shows whole days.
        const age = createdAt ? (now - Date.parse(createdAt)) / DAY : undefined;
        const ageDays = age === undefined ? undefined : Math.floor(age);
        const state =
          age === undefined
            ? "unknown age"
            : age >= dueDays
              ? "DUE"
              : age >= warnDays
                ? "WARN"
                : "ok";
        return {
          role,
          key: label,
          provider: provider.id,
          keyRef: provider.keyRef,
          createdAt,
          ageDays,
          state,
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
      let column:
        | {
            table: string;
            columns: string[];
            byKeyRef: Record<string, number>;
            nulls: number;
            invalid: Record<string, number>;
            scanned: number;
            /** provider:keyRef → values no configured key can open. */
            stranded: Record<string, number>;
          }
        | undefined;
      if (opts.table || opts.db) {
        if (!opts.table || !opts.column?.length)
          throw new ConfigError(
            "ENVELOPE_BAD_INPUT",
            "status for a column needs --table and --column.",
          );
        const db = await openDb(ctx, opts);
        try {
          const scan = await countKeyRefs({
            db,
            table: opts.table,
            primaryKey: opts.pk,
            columns: opts.column,
            signal: ctx.signal,
          });
          column = {
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
      const due = keys.some((k) => k.role === "encrypt" && k.state === "DUE");
      const strandedValues = Object.values(column?.stranded ?? {}).reduce((a, n) => a + n, 0);
      output(
        ctx.io,
        Boolean(flags.json),
        {
          config: config.path,
          sources: config.sources,
          warnDays,
          dueDays,
          keys,
          column,
          rotationDue: due,
          strandedValues,
        },
        () => {
          const lines = [
            `config: ${config.sources.join(" + ") || "none"}   (warn at ${warnDays} days, due at ${dueDays})`,
          ];
          for (const k of keys) {
            const age = k.ageDays === undefined ? "age unknown" : `${k.ageDays} day(s) old`;
            const note =
              k.state === "DUE"
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
              // `ref` (provider:keyRef) is read from the stored values: escaped and capped.
              lines.push(
                `  ${shown(ref)}: ${n} value(s)${column.stranded[ref] === undefined ? "" : "  ← NOT in the config: these cannot be decrypted"}`,
              );
            }
            if (strandedValues > 0)
              lines.push(
                `STRANDED: ${strandedValues} value(s) are under keys no configured key can open. Put the missing key back in \`decrypt\` (from its backup) before anything else.`,
              );
            for (const [code, n] of Object.entries(column.invalid))
              lines.push(`  not an envelope (${shown(code)}): ${n} value(s)`);
          }
          return lines.join("\n");
        },
      );
      if (opts.check && strandedValues > 0) setExit(EXIT_CODES.STRANDED);
      else if (opts.check && due) setExit(EXIT_CODES.ROTATION_DUE);
    },
  );
}

/** True when one of `providers` can open an entry under `ref` (`provider:keyRef` as counted). */
export function handledBy(providers: readonly KeyProvider[], ref: string): boolean {
  const colon = ref.indexOf(":");
  const entry = {
    providerId: ref.slice(0, colon),
    keyRef: ref.slice(colon + 1),
    wrapped: new Uint8Array(0),
  };
  return providers.some((p) => p.handles(entry));
}

/** A `--warn-days` / `--due-days` value: a positive number of days (fractions allowed). */
function days(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${flag} must be a positive number of days (e.g. 90, or 0.5 for twelve hours).`,
      { details: { field: flag } },
    );
  }
  return n;
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
