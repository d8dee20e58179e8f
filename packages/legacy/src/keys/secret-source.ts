import { ConfigError } from "@envelope/core";
import { type AwsSecretSource, describeAwsSecret, readAwsSecret } from "./aws-secrets-manager.js";
import { describeSource, type Env, type LegacyKeySource, readLocalSecret } from "./static-key.js";
import { describeVaultSecret, readVaultKvSecret, type VaultKvSource } from "./vault-kv.js";

/** Any place a legacy key, Fernet key, passphrase or PBKDF2 secret can come from. */
export type SecretSource = LegacyKeySource | { aws: AwsSecretSource } | { vault: VaultKvSource };

/** A name for the source in messages (never its value). */
export function describeSecretSource(source: SecretSource): string {
  if ("aws" in source) return describeAwsSecret(source.aws);
  if ("vault" in source) return describeVaultSecret(source.vault);
  return describeSource(source);
}

/**
 * Reads a secret's bytes from its source: env var, file / Docker secret, AWS Secrets
 * Manager (a version stage or id, optionally one JSON field) or Vault KV v2. Nothing read
 * is logged; errors name the source only.
 *
 * @example
 * const previous = await loadSecret({ aws: { secretId: "app/fernet", versionStage: "AWSPREVIOUS" } });
 */
export async function loadSecret(source: SecretSource, env: Env = process.env): Promise<Buffer> {
  if ("aws" in source) return readAwsSecret(source.aws);
  if ("vault" in source) return readVaultKvSecret(source.vault, env);
  return readLocalSecret(source, env);
}

/** The secret as text: UTF-8, one trailing newline (files, `echo` into secrets) removed. */
export async function loadSecretText(
  source: SecretSource,
  env: Env = process.env,
): Promise<string> {
  const bytes = await loadSecret(source, env);
  const text = bytes.toString("utf8").replace(/\r?\n$/, "");
  bytes.fill(0);
  return text;
}

/**
 * Parses a secret spec as the CLI takes it:
 * - `env:NAME` — an environment variable;
 * - `file:/run/secrets/name` — a file (Docker / Kubernetes secret);
 * - `aws-sm:<name or ARN>[?stage=AWSPREVIOUS|versionId=…&region=…][#jsonField]`;
 * - `vault-kv:<mount>/<path>[?version=N]#field` — KV v2 (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE).
 *
 * @example
 * parseSecretSpec("aws-sm:app/fernet?stage=AWSPREVIOUS#FERNET_KEY");
 */
export function parseSecretSpec(spec: string): SecretSource {
  const colon = spec.indexOf(":");
  const scheme = colon < 0 ? "" : spec.slice(0, colon);
  // A spec of an unknown scheme is not quoted: it is often the key itself, given where its
  // source was expected (`--legacy-key 3f9a…` for `--legacy-key env:NAME`).
  const known = ["env", "file", "aws-sm", "vault-kv"].includes(scheme);
  const bad = (why: string) =>
    new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Legacy key source ${known ? `"${spec.slice(0, 120)}"` : "(not shown: it may be the key itself)"}: ${why}. Use env:NAME, file:/path, aws-sm:<secret>[?stage=…][#field] or vault-kv:<mount>/<path>[?version=N]#field.`,
      { details: { field: "legacyKey" } },
    );
  const rest = spec.slice(colon + 1);
  if (scheme === "env") {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(rest)) throw bad("not an environment variable name");
    return { env: rest };
  }
  if (scheme === "file") {
    if (!rest) throw bad("no path");
    return { file: rest };
  }
  if (scheme !== "aws-sm" && scheme !== "vault-kv") throw bad("unknown source");
  const hash = rest.indexOf("#");
  const field = hash < 0 ? undefined : rest.slice(hash + 1);
  const beforeHash = hash < 0 ? rest : rest.slice(0, hash);
  const q = beforeHash.indexOf("?");
  const id = q < 0 ? beforeHash : beforeHash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : beforeHash.slice(q + 1));
  if (!id) throw bad("no secret name");
  if (scheme === "aws-sm") {
    const known = new Set(["stage", "versionId", "region"]);
    for (const k of params.keys()) if (!known.has(k)) throw bad(`unknown parameter "${k}"`);
    return {
      aws: {
        secretId: id,
        ...(params.get("stage") ? { versionStage: params.get("stage")! } : {}),
        ...(params.get("versionId") ? { versionId: params.get("versionId")! } : {}),
        ...(params.get("region") ? { region: params.get("region")! } : {}),
        ...(field ? { field } : {}),
      },
    };
  }
  for (const k of params.keys()) if (k !== "version") throw bad(`unknown parameter "${k}"`);
  const slash = id.indexOf("/");
  if (slash < 1 || slash === id.length - 1) throw bad("needs <mount>/<path>");
  if (!field) throw bad("needs #field (the key of the secret's data)");
  const version = params.get("version");
  if (version !== null && !/^[1-9][0-9]{0,9}$/.test(version))
    throw bad("version must be a positive integer");
  return {
    vault: {
      mount: id.slice(0, slash),
      path: id.slice(slash + 1),
      field,
      ...(version ? { version: Number(version) } : {}),
    },
  };
}
