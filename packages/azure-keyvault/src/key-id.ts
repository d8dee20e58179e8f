import { ConfigError } from "@envelope/core";

/** A parsed Key Vault / Managed HSM key identifier. */
export interface KeyId {
  /** `https://<vault-host>` (host lowercased; port kept if given). */
  readonly vaultUrl: string;
  /** `<vault-host>[:port]`, lowercased. */
  readonly host: string;
  /** Key name as given. Key Vault compares names case-insensitively. */
  readonly name: string;
  /** 32-hex version, or undefined for "the latest version". */
  readonly version: string | undefined;
}

const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-zA-Z]{1,64}$/;

/**
 * Parses `https://<vault-host>/keys/<name>[/<version>]` or the URI form
 * `azure-kv://<vault-host>/keys/<name>[/<version>]` (https implied). Query strings,
 * fragments, user info and other paths are refused: a key id is exactly a key.
 *
 * @example
 * parseKeyId("https://contoso.vault.azure.net/keys/pii/0123abcd…");
 * // { vaultUrl: "https://contoso.vault.azure.net", name: "pii", version: "0123abcd…", … }
 */
export function parseKeyId(input: string, field = "keyId"): KeyId {
  const bad = (why: string) =>
    new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `azure-kv: ${field} ${why}. Use https://<vault>.vault.azure.net/keys/<name>[/<version>] or azure-kv://<vault>.vault.azure.net/keys/<name>[/<version>] (Managed HSM: <hsm>.managedhsm.azure.net).`,
      { details: { field } },
    );
  if (typeof input !== "string" || input.length === 0 || input.length > 1024)
    throw bad("is missing or not a string");
  const text = input.startsWith("azure-kv://")
    ? `https://${input.slice("azure-kv://".length)}`
    : input;
  if (/[?#]/.test(text)) throw bad("must not carry a query string or fragment");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad("is not a URL");
  }
  if (url.protocol !== "https:") throw bad("must use https");
  if (url.username || url.password) throw bad("must not carry user info");
  const segments = url.pathname.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  if (segments[0] !== "keys" || segments.length < 2 || segments.length > 3)
    throw bad("must be a key path /keys/<name>[/<version>]");
  const name = segments[1]!;
  const version = segments[2];
  if (!NAME.test(name)) throw bad("has an invalid key name (1-127 letters, digits and dashes)");
  if (version !== undefined && !VERSION.test(version)) throw bad("has an invalid key version");
  const host = url.host.toLowerCase();
  return { vaultUrl: `https://${host}`, host, name, version: version?.toLowerCase() };
}

/**
 * The canonical identifier: `https://<host>/keys/<name>[/<version>]`.
 *
 * @example
 * formatKeyId(parseKeyId("azure-kv://Contoso.vault.azure.net/keys/pii")); // "https://contoso.vault.azure.net/keys/pii"
 */
export function formatKeyId(id: KeyId): string {
  return `${id.vaultUrl}/keys/${id.name}${id.version ? `/${id.version}` : ""}`;
}

/** Same vault and key name (any version). Key Vault names are case-insensitive. */
export function sameKey(a: KeyId, b: KeyId): boolean {
  return a.host === b.host && a.name.toLowerCase() === b.name.toLowerCase();
}

/** Parses an entry's key reference without throwing: undefined when it is not a versioned key id. */
export function tryParseVersioned(keyRef: string): (KeyId & { version: string }) | undefined {
  try {
    const id = parseKeyId(keyRef);
    return id.version ? (id as KeyId & { version: string }) : undefined;
  } catch {
    return undefined;
  }
}
