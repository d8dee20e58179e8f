import type { AuditHook } from "../audit.js";
import type { DataKeyReuseOptions } from "../cache/data-key-cache.js";
import type { UnwrapCacheOptions } from "../cache/unwrap-cache.js";
import type { SigningOptions, TrustedSignerInput } from "../crypto/signing-keys.js";
import type { KeyProvider } from "../providers/types.js";
import type { PadOption } from "./padding.js";
import type { WriterSuite } from "./suite.js";

/**
 * One master key, given as a key URI (`local-rsa:///run/secrets/enc_key.pem`), a config
 * object naming its provider (`{ provider: "local-rsa", path: "…" }`), or a provider object.
 */
export type KeySpec = string | KeyProvider | ProviderConfig;

/** Options of one provider; `provider` is its URI scheme. Other fields are the provider's. */
export interface ProviderConfig {
  readonly provider: string;
  readonly [option: string]: unknown;
}

/**
 * Envelope configuration: which key(s) encrypt, which may also decrypt, and the caches.
 * The same shape comes from code, from `ENVELOPE_*` env vars, or from a config file.
 *
 * @example
 * const envelope = await createEnvelope({
 *   encrypt: "aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii",
 *   decrypt: ["local-rsa:///run/secrets/old_key.pem"], // data sealed before the migration
 * });
 */
export interface EnvelopeConfig {
  /** Key(s) new values are sealed under; several = multi-wrap, any one of them decrypts. */
  encrypt: KeySpec | readonly KeySpec[];
  /** Extra keys allowed to decrypt (old keys, the previous provider during a migration). */
  decrypt?: readonly KeySpec[];
  /** Unwrap cache: `{ maxEntries, ttlMs }`, or `false` to disable. On by default. */
  cache?: UnwrapCacheOptions | false;
  /** Data-key reuse on encrypt: `{ maxMessages, maxBytes, maxAgeMs }`. Off by default. */
  dataKeyReuse?: DataKeyReuseOptions | false;
  /** Store the context in each envelope (default false: the caller supplies it). */
  storeContext?: boolean;
  /** Audit hook: ids and timings of every operation, never key material. */
  onAudit?: AuditHook;
  /**
   * Writers: sign every value with this Ed25519 private key (suite 0x02). `key` is a PEM
   * string, `ed25519:///run/secrets/signer.pem`, `ed25519://env/VAR` or a KeyObject.
   */
  signing?: SigningOptions;
  /**
   * Readers in signed mode: the writers' Ed25519 public keys (`ed25519:<hex>`, PEM,
   * `ed25519:///path.pub.pem`, 32 raw bytes or a KeyObject). Unsigned values and other
   * signers are refused.
   */
  trustedSigners?: readonly TrustedSignerInput[];
  /** Most wrapped keys one value may make this client try (default 3); see `EnvelopeOptions`. */
  maxEntriesTried?: number;
  /**
   * Length padding of every sealed value: a bucket size (`32`), `{ bucket, min }` or
   * `"pii"` (`{ bucket: 32, min: 64 }`). Off by default; `encrypt(…, { pad })` overrides it.
   */
  pad?: PadOption;
  /**
   * Suite of new unsigned values: `1` (default) or `3` (one-step SHA-512, less CPU per
   * uncached value; every reader must know suite 0x03 first). See `EnvelopeOptions.suite`.
   */
  suite?: WriterSuite;
}

export const CONFIG_FIELDS = [
  "encrypt",
  "decrypt",
  "cache",
  "dataKeyReuse",
  "storeContext",
  "onAudit",
  "signing",
  "trustedSigners",
  "maxEntriesTried",
  "pad",
  "suite",
] as const;
