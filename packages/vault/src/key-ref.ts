import { ProviderError } from "@envelope/core";

/** Provider id written into every entry; also the URI scheme. */
export const PROVIDER_ID = "vault-transit";

/** A transit key reference: `<mount>/keys/<name>@v<N>` (the version is optional before first use). */
export interface VaultKeyRef {
  mount: string;
  name: string;
  version?: number;
}

// Vault's key-name rule (framework.GenericNameRegex): may contain `.`, `-`, `@`.
const NAME = /^\w(?:[\w.@-]*\w)?$/;
const CIPHERTEXT = /^vault:v(\d{1,9}):[A-Za-z0-9+/]+={0,2}$/;

/**
 * Formats `<mount>/keys/<name>` or `<mount>/keys/<name>@v<N>`.
 *
 * @example
 * formatKeyRef({ mount: "transit", name: "pii", version: 3 }); // "transit/keys/pii@v3"
 */
export function formatKeyRef(ref: VaultKeyRef): string {
  const base = `${ref.mount}/keys/${ref.name}`;
  return ref.version === undefined ? base : `${base}@v${ref.version}`;
}

/**
 * Parses a key reference (undefined when it is not one). The mount may contain slashes (`team-a/transit`), the name may
 * contain `@`, so the version suffix is read from the end and the name after the last `/keys/`.
 *
 * @example
 * parseKeyRef("team-a/transit/keys/pii@v2"); // { mount: "team-a/transit", name: "pii", version: 2 }
 */
export function parseKeyRef(keyRef: string): VaultKeyRef | undefined {
  const at = /@v(\d{1,9})$/.exec(keyRef);
  const body = at ? keyRef.slice(0, at.index) : keyRef;
  const cut = body.lastIndexOf("/keys/");
  if (cut <= 0) return undefined;
  const mount = body.slice(0, cut);
  const name = body.slice(cut + "/keys/".length);
  if (!NAME.test(name) || !isMountPath(mount)) return undefined;
  return at ? { mount, name, version: Number(at[1]) } : { mount, name };
}

/** True for a transit mount path such as `transit` or `team-a/transit` (no leading/trailing slash). */
export function isMountPath(mount: string): boolean {
  return /^[\w.-]+(?:\/[\w.-]+)*$/.test(mount);
}

/** True for a valid transit key name. */
export function isKeyName(name: string): boolean {
  return NAME.test(name);
}

/** The key version in a `vault:vN:…` ciphertext, or undefined when it is not one. */
export function ciphertextVersion(ciphertext: string): number | undefined {
  const match = CIPHERTEXT.exec(ciphertext);
  return match ? Number(match[1]) : undefined;
}

/** The ciphertext string of an entry (its wrapped bytes are the ASCII ciphertext). */
export function entryCiphertext(
  wrapped: Uint8Array,
  keyRef: string,
): { ciphertext: string; version: number } {
  const ciphertext = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.length).toString(
    "latin1",
  );
  const version = ciphertextVersion(ciphertext);
  const ref = parseKeyRef(keyRef);
  if (version === undefined || ref?.version !== version) {
    throw new ProviderError(
      "ENVELOPE_UNWRAP_FAILED",
      `${PROVIDER_ID}: the wrapped key under "${keyRef}" is not a Vault transit ciphertext of that key version; the entry was altered or written by another tool.`,
      { details: { provider: PROVIDER_ID, keyRef } },
    );
  }
  return { ciphertext, version };
}
