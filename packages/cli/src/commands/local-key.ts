import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
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
  const gitignore = ignoreKeysInGit(resolve(ctx.io.cwd, opts.dir));
  return {
    ...pair,
    ...(gitignore ? { gitignore } : {}),
    uri: `local-rsa://${pair.privateKeyPath}${query}`,
    createdAt: new Date().toISOString(),
  };
}

/**
 * A key folder inside a git work tree gets a `.gitignore` that ignores everything in it
 * (unless it has one), so `git add .` cannot commit a private key. Returns its path when
 * written. Folders outside a repository (/run/secrets, a mounted volume) are left alone.
 */
function ignoreKeysInGit(dir: string): string | undefined {
  const file = join(dir, ".gitignore");
  if (existsSync(file) || !insideGitWorkTree(dir)) return undefined;
  writeFileSync(
    file,
    "# Written by `envelope keygen` / `rotate`: private keys must never be committed.\n*\n",
    { flag: "wx", mode: 0o644 },
  );
  return file;
}

function insideGitWorkTree(dir: string): boolean {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, ".git"))) return true;
    if (dirname(at) === at) return false;
  }
}
