import { existsSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { ConfigError } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { writeJsonConfig } from "../config/write.js";
import { output } from "../io.js";
import { newLocalKey } from "./local-key.js";

/** `keygen`: a local RSA key pair, and with `--init` a config file encrypting with it. */
export function registerKeygenCommand(program: Command, ctx: CliContext): void {
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
              ...(key.gitignore
                ? [`git          ${key.gitignore} written: the key folder is in a git repository`]
                : []),
              opts.init
                ? `config       ${configPath} now encrypts with this key`
                : `Use it: ENVELOPE_ENCRYPT_KEYS=${key.uri}`,
            ].join("\n"),
        );
      },
    );
}
