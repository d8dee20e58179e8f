import type { AuditHook } from "./audit.js";
import type { DataKeyReuseOptions } from "./cache/data-key-cache.js";
import type { UnwrapCacheOptions } from "./cache/unwrap-cache.js";
import type { PadOption } from "./config/padding.js";
import type { WriterSuite } from "./config/suite.js";
import type { SigningOptions, TrustedSignerInput } from "./crypto/signing-keys.js";
import type { EncryptionContext } from "./format/context.js";
import type { KeyProvider } from "./providers/types.js";

// The public options of the Envelope client (client.ts), apart so the façade stays short.

/** Options of an Envelope client built from provider objects. See `createEnvelope` for config. */
export interface EnvelopeOptions {
  /** Provider(s) new data keys are wrapped under. Several = multi-wrap (one entry each). */
  encrypt: KeyProvider | readonly KeyProvider[];
  /** Further providers allowed to decrypt (old keys, the previous provider during a migration). */
  decrypt?: readonly KeyProvider[];
  /** Unwrap cache. Default `{ maxEntries: 1000, ttlMs: 300000 }`; `false` disables it. */
  cache?: UnwrapCacheOptions | false;
  /** Opt-in data-key reuse on encrypt. Default off. */
  dataKeyReuse?: DataKeyReuseOptions | false;
  /** Store the canonical context inside each envelope. Default false (the caller supplies it). */
  storeContext?: boolean;
  /** Audit hook: one event per encrypt / decrypt / unwrap / wrap / rewrap. */
  onAudit?: AuditHook;
  /**
   * Writer authentication: sign every value this client seals (suite 0x02) with an
   * Ed25519 private key. Rewrap keeps the signature (it needs no signing key).
   */
  signing?: SigningOptions;
  /**
   * Signed mode for readers: decrypt only values signed by one of these Ed25519 public
   * keys; an unsigned value is `ENVELOPE_UNSIGNED`, another signer
   * `ENVELOPE_UNTRUSTED_SIGNER`. Without it, signed values are still verified (integrity)
   * and unsigned ones opened, so anyone who can wrap a data key can forge values.
   */
  trustedSigners?: readonly TrustedSignerInput[];
  /**
   * Most wrapped-key entries one value may make this client try (entries a configured key
   * handles; each try can cost an RSA private-key operation or a KMS call). A value with
   * more is refused with `ENVELOPE_LIMIT_EXCEEDED` before any unwrap, so a planted value
   * cannot make one read cost 16 KMS calls. Default: 3, or the number of `encrypt` keys
   * when that is larger (every value this client writes must stay readable). Raise it when
   * values are multi-wrapped under more keys this client also holds.
   */
  maxEntriesTried?: number;
  /**
   * Length padding of every value this client seals (`32`, `{ bucket: 32, min: 64 }`,
   * `"pii"`), so a stored value shows a length bucket instead of its exact length; off by
   * default. `encrypt(…, { pad })` overrides it per call. Readers need @envelope/core with
   * padding support (docs/FORMAT.md §2.3). Never applied to stream key envelopes.
   */
  pad?: PadOption;
  /**
   * The suite unsigned values are written in: `1` (default, HKDF-SHA256, readable by every
   * version) or `3` (one SHA-512 call instead of three HMACs, docs/FORMAT.md §15: less CPU
   * per value whose data key is not cached). Readers older than suite 0x03 refuse suite 3
   * values: turn it on only once every reader is upgraded. Reading is unaffected (every
   * suite is read whatever this says); signing clients write suite 0x02.
   */
  suite?: WriterSuite;
}

export interface EncryptOptions<O extends "binary" | "text" = "binary" | "text"> {
  /** Where the value belongs, e.g. `{ table: "users", column: "email", id: "42" }`. */
  context?: EncryptionContext;
  /** `binary` (default): a Buffer for bytea/BLOB columns. `text`: an `ev1:` string. */
  output?: O;
  /** Length padding for this value; overrides the client's `pad` (`false` turns it off). */
  pad?: PadOption;
}

export interface DecryptOptions<A extends "bytes" | "text" = "bytes" | "text"> {
  /** The context given at encrypt. Optional when the envelope stores its context. */
  context?: EncryptionContext;
  /** `bytes` (default) returns a Buffer; `text` returns a UTF-8 string. */
  as?: A;
}

export interface RewrapOptions {
  /**
   * Provider(s) to re-protect the data key under. Several = multi-wrap. Default: this
   * client's encrypting key(s) — so a client configured with the new key to encrypt and
   * the old one to decrypt moves values onto the new key.
   */
  to?: KeyProvider | readonly KeyProvider[];
  /** The context given at encrypt (needed by KMSs that bind it, such as AWS KMS). */
  context?: EncryptionContext;
  /** Keep the existing entries and add the new ones (default: replace them). */
  keep?: boolean;
  /**
   * Rewrap entries even when they already name the target key. Needed when a KMS rotates
   * key material behind an unchanged key reference (AWS KMS rotation keeps the ARN) and
   * you want values on the newest material; uses the native rewrap where available.
   */
  force?: boolean;
  /**
   * Also authenticate the body before anything is rewrapped: the data key is unwrapped
   * here and the ciphertext is checked against its GCM tag under `context` (or the stored
   * context), without keeping any plaintext. A value that is corrupted, or that belongs to
   * another row or column, then fails with the error `decrypt` would give
   * (`ENVELOPE_DECRYPT_FAILED`, `ENVELOPE_CONTEXT_MISMATCH`) instead of being carried
   * forward under the new key. Costs one pass of AES-GCM over the body. With a native
   * rewrap it costs no extra KMS call: the unwrap that proves the new entry also yields the
   * key that checks the body (2 calls per value); otherwise the old entry is unwrapped, as
   * a local rewrap does anyway. Default false here for compatibility; the batch
   * rewrap engine and `envelope rewrap` turn it on by default.
   */
  verifyBody?: boolean;
}
