import { resolve } from "node:path";
import { ConfigError } from "@envelope/core";
import { generateKeyPair, type ModulusLength } from "@envelope/local-rsa";
import type { CliContext } from "../command-context.js";

/** Generates a local RSA key pair for `keygen` and `rotate`; returns its paths, key ref and URI. */
export async function newLocalKey(
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
