import { inspect } from "node:util";
import { type AuditEvent, type AuditHook, auditEvent, emit } from "./audit.js";
import {
  type BulkOptions,
  type BulkResult,
  type DecryptManyItem,
  decryptGrouped,
  type EncryptManyItem,
  encryptEach,
} from "./bulk.js";
import { type PlaintextInput, plaintextBytes, utf8Text } from "./bytes.js";
import {
  DataKeyCache,
  type DataKeyReuseOptions,
  type EncryptionMaterials,
} from "./cache/data-key-cache.js";
import {
  UnwrapCache,
  type UnwrapCacheOptions,
  type UnwrapCacheStats,
} from "./cache/unwrap-cache.js";
import { choosePad, type PadOption, padRule } from "./config/padding.js";
import { bodyAad } from "./crypto/aad.js";
import { openBody } from "./crypto/aead.js";
import {
  type EncryptionContext,
  encodeContext,
  encodeSnapshot,
  snapshotContext,
} from "./crypto/context.js";
import { commitmentMatches, deriveMessageKeys } from "./crypto/kdf.js";
import { type DataKeyMaterials, dataKeyMaterials } from "./crypto/materials.js";
import { randomBytesPooled } from "./crypto/random.js";
import { latin1, openAndZero, seal } from "./crypto/seal.js";
import { checkSignature, VerifiedSignatures } from "./crypto/signature.js";
import {
  loadSigningKey,
  loadTrustedSigners,
  type SigningKey,
  type SigningOptions,
  type TrustedSignerInput,
  type TrustedSigners,
} from "./crypto/signing-keys.js";
import { verifyBody } from "./crypto/verify-body.js";
import { ConfigError, DecryptionError, type EnvelopeError, ProviderError } from "./errors.js";
import { DATA_KEY_LENGTH, FLAG_CONTEXT_STORED, MAX_ENTRIES } from "./format/constants.js";
import { encodeEnvelope } from "./format/encode.js";
import type { EnvelopeParts, WrappedKey } from "./format/envelope.js";
import { type PadRule, stripPadding } from "./format/padding.js";
import {
  type EnvelopeInfo,
  inspectEnvelope,
  parse,
  resolveContext,
  type Sealed,
} from "./format/parse.js";
import { printable } from "./format/printable.js";
import { checkPurpose, purposeFlags } from "./format/purpose.js";
import { toText } from "./format/text.js";
import { checkEntry, checkEntryCount } from "./format/validate.js";
import {
  cachesUnwrap,
  supportsDataKeyGeneration,
  supportsNativeRewrap,
  supportsRefresh,
} from "./providers/capabilities.js";
import {
  checkDataKey,
  checkProvider,
  checkReturnedEntry,
  takeDataKey,
} from "./providers/checks.js";
import {
  asEnvelopeError,
  commitmentError,
  entryLimitError,
  maxEntriesTried,
  nativeRewrapError,
  pickFailure,
  type TriedEntry,
  wrapFailure,
} from "./providers/failures.js";
import type { KeyProvider, KeyRequest } from "./providers/types.js";
import { checkReadiness, type ReadinessOptions, type ReadinessReport } from "./readiness.js";

export type { DataKeyMaterials } from "./crypto/materials.js";

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
   * a local rewrap does anyway. Default false here for compatibility; the batch rewrap
   * engine and `envelope rewrap` turn it on by default.
   */
  verifyBody?: boolean;
}

/** A data key proven against a value's commitment, its message key, and the entry it came from. */
interface VerifiedKey {
  readonly dataKey: Buffer;
  readonly encryptionKey: Buffer;
  readonly entry: WrappedKey;
}

/** Authenticates a value's body (GCM tag) with its message key; no plaintext is kept. */
function checkBody(key: VerifiedKey, parts: EnvelopeParts, canonical: Uint8Array): void {
  verifyBody(
    key.encryptionKey,
    parts.body,
    bodyAad(parts.flags, parts.messageId, canonical, parts.suite),
    parts.flags,
  );
}

/** Where a remembered message key came from: the entry, its provider, the KMS context. */
interface MessageKeyOrigin {
  readonly provider: KeyProvider;
  readonly entry: WrappedKey;
  readonly kms: string;
}

/**
 * The Envelope client: encrypt, decrypt and rewrap values with per-message data keys.
 * Build it from providers here, or from config / env with `createEnvelope` and
 * `envelopeFromEnv`.
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "local-rsa:///run/secrets/enc_key.pem" });
 * const sealed = await envelope.encrypt("alice@example.com", { context: { table: "users", column: "email", id: "42" } });
 * const email = await envelope.decrypt(sealed, { context: { table: "users", column: "email", id: "42" }, as: "text" });
 */
export class Envelope {
  readonly #encryptors: readonly KeyProvider[];
  readonly #decryptors: readonly KeyProvider[];
  readonly #cache: UnwrapCache | undefined;
  readonly #reuse: DataKeyCache | undefined;
  readonly #storeContext: boolean;
  readonly #audit: AuditHook | undefined;
  readonly #signer: SigningKey | undefined;
  readonly #trusted: TrustedSigners | undefined;
  readonly #verified: VerifiedSignatures | undefined;
  readonly #maxEntriesTried: number;
  readonly #pad: PadRule | undefined;

  constructor(options: EnvelopeOptions) {
    const encrypt = Array.isArray(options.encrypt)
      ? options.encrypt
      : [options.encrypt as KeyProvider];
    if (encrypt.length === 0) {
      throw new ConfigError("ENVELOPE_BAD_CONFIG", "encrypt: give at least one key provider.", {
        details: { field: "encrypt" },
      });
    }
    if (encrypt.length > MAX_ENTRIES) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `encrypt: ${encrypt.length} keys given; an envelope holds at most ${MAX_ENTRIES} wrapped keys. Move the extra keys to \`decrypt\`.`,
        { details: { field: "encrypt" } },
      );
    }
    for (const [i, p] of encrypt.entries()) checkProvider(p, `encrypt[${i}]`);
    for (const [i, p] of (options.decrypt ?? []).entries()) checkProvider(p, `decrypt[${i}]`);
    this.#encryptors = Object.freeze([...encrypt]);
    this.#decryptors = Object.freeze([...encrypt, ...(options.decrypt ?? [])]);
    this.#cache = options.cache === false ? undefined : new UnwrapCache(options.cache ?? {});
    this.#reuse = options.dataKeyReuse ? new DataKeyCache(options.dataKeyReuse) : undefined;
    this.#storeContext = options.storeContext ?? false;
    this.#audit = options.onAudit;
    this.#signer =
      options.signing === undefined
        ? undefined
        : loadSigningKey(options.signing?.key, "signing.key");
    this.#trusted =
      options.trustedSigners === undefined ? undefined : loadTrustedSigners(options.trustedSigners);
    // With caching on, a signature verified once is not verified again (see the class).
    this.#verified = options.cache === false ? undefined : new VerifiedSignatures();
    this.#maxEntriesTried = maxEntriesTried(options.maxEntriesTried, encrypt.length);
    this.#pad = padRule(options.pad);
  }

  /** Encrypts a value under a fresh (or, with data-key reuse, a recent) data key. */
  encrypt(
    plaintext: PlaintextInput,
    options: EncryptOptions<"text"> & { output: "text" },
  ): Promise<string>;
  // `output` / `as` are required in the text overloads: options without them (such as
  // `{ context }`) return bytes and must not be typed as a string.
  encrypt(plaintext: PlaintextInput, options?: EncryptOptions<"binary">): Promise<Buffer>;
  encrypt(plaintext: PlaintextInput, options?: EncryptOptions): Promise<Buffer | string>;
  async encrypt(
    plaintext: PlaintextInput,
    options: EncryptOptions | undefined = {},
  ): Promise<Buffer | string> {
    options ??= {};
    const started = this.#audit ? performance.now() : 0;
    const primary = this.#encryptors[0]!;
    let reused = false;
    try {
      const data = plaintextBytes(plaintext);
      // Encoded before defaulting, so `context: null` is refused as decrypt refuses it.
      // Read once (issue 11): the bytes authenticated and the context a KMS binds agree.
      const given = snapshotContext(options.context);
      const canonical = encodeSnapshot(given);
      const context = given ?? {};
      const purpose = purposeFlags(options);
      const flags = (this.#storeContext ? FLAG_CONTEXT_STORED : 0) | purpose;
      const pad = purpose === 0 ? choosePad(options.pad, this.#pad) : undefined;
      // A stream key gets a data key of its own, never one shared with values.
      const reuse = purpose === 0 ? this.#reuse : undefined;
      const reuseKey = reuse ? this.#reuseKey(context) : "";
      let materials = reuse?.take(reuseKey, data.length);
      reused = materials !== undefined;
      if (!materials) {
        materials = await this.#freshMaterials({ context });
        reuse?.put(reuseKey, materials, data.length);
      }
      const sealed = seal(materials, data, flags, canonical, this.#signer, pad);
      if (!reused) materials.dataKey.fill(0);
      this.#event("encrypt", primary, started, { dataKeyReused: reused });
      return options.output === "text" ? toText(sealed) : sealed;
    } catch (error) {
      this.#event("encrypt", primary, started, { dataKeyReused: reused }, error);
      throw error;
    }
  }

  /** Decrypts a sealed value (binary or `ev1:` text) with whichever configured key can open it. */
  decrypt(sealed: Sealed, options: DecryptOptions<"text"> & { as: "text" }): Promise<string>;
  decrypt(sealed: Sealed, options?: DecryptOptions<"bytes">): Promise<Buffer>;
  decrypt(sealed: Sealed, options?: DecryptOptions): Promise<Buffer | string>;
  async decrypt(
    sealed: Sealed,
    options: DecryptOptions | undefined = {},
  ): Promise<Buffer | string> {
    options ??= {};
    const started = this.#audit ? performance.now() : 0;
    // keyRef: the entry's key that opened the value, which after a rotation is not the
    // provider's current keyRef.
    let used: { provider: KeyProvider | undefined; keyRef?: string; cacheHit: boolean } = {
      provider: undefined,
      cacheHit: false,
    };
    try {
      const parts = parse(sealed);
      checkPurpose(parts.flags, options); // before any unwrap: a stream key is not a value
      const { context, canonical } = resolveContext(parts, snapshotContext(options.context));
      // Signed mode: refuse unsigned / untrusted values and check the signature before
      // any cache lookup or unwrap (the warm path in #open included).
      checkSignature(parts, canonical, this.#trusted, this.#verified);
      const aad = bodyAad(parts.flags, parts.messageId, canonical, parts.suite);
      const opened = await this.#open(parts, { context }, aad, (u) => {
        used = u;
      });
      const plaintext = stripPadding(opened, parts.flags);
      const extra = { cacheHit: used.cacheHit };
      this.#event("decrypt", used.provider, started, extra, undefined, used.keyRef);
      return options.as === "text" ? utf8Text(plaintext) : plaintext;
    } catch (error) {
      const extra = { cacheHit: used.cacheHit };
      this.#event("decrypt", used.provider, started, extra, error, used.keyRef);
      throw error;
    }
  }

  /**
   * Re-protects the data key under `to` and leaves the body (ciphertext and tag)
   * byte-for-byte identical. Uses the KMS's native rewrap when the target provider offers
   * one for an existing entry; otherwise unwraps with a configured key, checks the key
   * commitment, and wraps again. Returns the same form (binary or text) it was given.
   *
   * No entry is dropped until every entry that stays or replaces it is proven to open to
   * this value's data key (the key commitment): an entry already under a target key is
   * kept only after it was unwrapped and checked (or it was the entry that yielded the
   * verified data key), and is replaced by a fresh wrap when it cannot be proven; the
   * entry a native rewrap returns is unwrapped once with the target to check it before
   * the old entries go (so the target needs decrypt permission, and the data key does
   * reach this process for that check). When nothing would be dropped (entries already
   * exactly the targets, or `keep`), entries are kept as they are and nothing is unwrapped.
   * With `verifyBody`, the body is authenticated too (see {@link RewrapOptions.verifyBody}).
   */
  rewrap(sealed: string, options?: RewrapOptions): Promise<string>;
  rewrap(sealed: Uint8Array, options?: RewrapOptions): Promise<Buffer>;
  rewrap(sealed: Sealed, options?: RewrapOptions): Promise<Buffer | string>;
  async rewrap(sealed: Sealed, options: RewrapOptions | undefined = {}): Promise<Buffer | string> {
    options ??= {};
    const started = this.#audit ? performance.now() : 0;
    const to = options.to ?? this.#encryptors;
    // The same target named twice would write the same key twice into one envelope.
    const targets = [...new Set(Array.isArray(to) ? to : [to as KeyProvider])];
    try {
      if (targets.length === 0) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          "rewrap: `to` must name at least one key provider.",
        );
      }
      for (const [i, p] of targets.entries()) checkProvider(p, `to[${i}]`);
      const parts = parse(sealed);
      const { context, canonical } = resolveContext(parts, snapshotContext(options.context));
      const request: KeyRequest = { context };
      const plan = targets.map((target) => ({
        target,
        current: options.force
          ? undefined
          : parts.entries.find((e) => e.providerId === target.id && e.keyRef === target.keyRef),
      }));
      // Entries kept as they are need proof only when others are dropped beside them.
      const drops = !options.keep && parts.entries.some((e) => !plan.some((p) => p.current === e));
      const fresh: WrappedKey[] = [];
      let verified: VerifiedKey | undefined;
      const dataKeyOf = async (): Promise<VerifiedKey> => {
        if (!verified) {
          const found = await this.#verifiedDataKey(parts, request);
          verified = {
            dataKey: found.dataKey,
            encryptionKey: found.encryptionKey,
            entry: found.entry,
          };
        }
        return verified;
      };
      const nativeSource = (target: KeyProvider, current: WrappedKey | undefined) =>
        supportsNativeRewrap(target)
          ? parts.entries.find(
              (e) => e !== current && e.providerId === target.id && target.handles(e),
            )
          : undefined;
      // With verifyBody and a native rewrap, the body is checked with the data key the new
      // entry's proof unwraps (2 KMS calls per value, not 3: the old entry is not unwrapped).
      const bodyAfterNative =
        Boolean(options.verifyBody) &&
        plan.some(({ target, current }) => !current && nativeSource(target, current));
      // native: every new entry was made inside a KMS (none wrapped here).
      let nativeCalls = 0;
      let wrappedHere = false;
      try {
        if (options.verifyBody && !bodyAfterNative) checkBody(await dataKeyOf(), parts, canonical);
        for (const { target, current } of plan) {
          if (current) {
            const proven =
              !drops ||
              verified?.entry === current ||
              (await this.#opensToCommitment(current, [target], parts, request));
            if (proven) {
              fresh.push(current);
              continue;
            }
            // Bogus, or unprovable (an encrypt-only target): replaced by a proven entry.
          }
          const source = nativeSource(target, current);
          if (source && supportsNativeRewrap(target)) {
            nativeCalls++;
            const entry: WrappedKey = await this.#timed(
              "wrap",
              target,
              () => target.rewrap(source, request),
              { native: true },
            );
            checkReturnedEntry(entry, target);
            if (!verified && options.verifyBody) {
              verified = await this.#nativeEntryKey(entry, target, parts, request);
            } else if (!(await this.#opensToCommitment(entry, [target], parts, request, true))) {
              throw nativeRewrapError(target, entry);
            }
            fresh.push(entry);
            continue;
          }
          wrappedHere = true;
          const { dataKey } = await dataKeyOf();
          const entry: WrappedKey = await this.#timed("wrap", target, () =>
            target.wrap(dataKey, request),
          );
          checkReturnedEntry(entry, target);
          fresh.push(entry);
        }
        if (bodyAfterNative) checkBody(await dataKeyOf(), parts, canonical);
      } finally {
        verified?.dataKey.fill(0);
        verified?.encryptionKey.fill(0);
      }
      const kept = options.keep
        ? parts.entries.filter(
            (e) => !fresh.some((f) => f.providerId === e.providerId && f.keyRef === e.keyRef),
          )
        : [];
      const entries = [...fresh, ...kept];
      checkEntryCount(entries.length);
      const out = encodeEnvelope({ ...parts, entries });
      this.#event("rewrap", targets[0], started, { native: nativeCalls > 0 && !wrappedHere });
      return typeof sealed === "string" ? toText(out) : out;
    } catch (error) {
      this.#event("rewrap", targets[0], started, {}, error);
      throw error;
    }
  }

  /**
   * A fresh data key wrapped under this client's encrypting key(s), for sealing several
   * values under one data key with `encryptWithDataKey` (e.g. the fields of one record:
   * one KMS call per record, not per field). The caller zeroes `dataKey` when done.
   *
   * @example
   * const materials = await envelope.generateDataKey({ context: { table: "users", id: "42" } });
   * try {
   *   const email = envelope.encryptWithDataKey(materials, "a@example.com", { context: { table: "users", column: "email", id: "42" } });
   * } finally { materials.dataKey.fill(0); }
   */
  async generateDataKey(options: { context?: EncryptionContext } = {}): Promise<DataKeyMaterials> {
    const given = snapshotContext(options.context);
    encodeSnapshot(given);
    const context = given ?? {};
    const materials = await this.#freshMaterials({ context });
    // Values sealed with this key are usually read back soon (a record just written):
    // prime the unwrap cache so that costs no KMS call.
    for (const [i, entry] of materials.entries.entries()) {
      const provider = this.#encryptors[i]!;
      if (this.#cache && cachesUnwrap(provider)) {
        this.#cache.prime(this.#cacheKey(provider, entry, { context }), materials.dataKey);
      }
    }
    // The data key stays reachable as `.dataKey` but prints nowhere (inspect, JSON).
    return dataKeyMaterials(materials.dataKey, materials.entries);
  }

  /**
   * The data key of a sealed value and its wrapped entries, commitment-checked and served
   * from the unwrap cache when warm, to seal more values under the same key (a partial
   * update of a record). `context` is what the KMS bound at wrap time, if it binds any.
   * The caller zeroes `dataKey` when done.
   *
   * Checks the key commitment ONLY: not the value's body (GCM tag), not its context, not
   * who made it. Whoever holds an encrypt-only key (a local-rsa public key, kms:Encrypt)
   * can store a value under a data key they chose; it passes this check, and without
   * writer signatures it also opens. Contract: seal new data under the returned key only
   * when BOTH hold —
   * 1. a value sealed under it was fully opened (`decrypt`: tag and context verified)
   *    under the context the new data belongs to, and this key was taken from that same
   *    value (the commitment binds the key to that value);
   * 2. you know the key was not chosen by someone else: this process generated it
   *    (`generateDataKey`) for that same record.
   * Otherwise take a fresh key with `generateDataKey` and re-seal what shares it.
   * `@envelope/records`' `update` follows this contract.
   */
  async unwrapDataKey(
    sealed: Sealed,
    options: { context?: EncryptionContext } = {},
  ): Promise<DataKeyMaterials> {
    const parts = parse(sealed);
    checkPurpose(parts.flags, {}); // a stream key envelope's data key is not a record's
    const { context, canonical } = resolveContext(parts, snapshotContext(options.context));
    // Signed mode: a planted unsigned (or untrusted) value must not hand out its data key
    // for new data, which this client would then sign as genuine.
    checkSignature(parts, canonical, this.#trusted, this.#verified);
    const found = await this.#verifiedDataKey(parts, { context });
    found.encryptionKey.fill(0);
    return dataKeyMaterials(
      found.dataKey,
      parts.entries.map((e) => ({ ...e, wrapped: Buffer.from(e.wrapped) })),
    );
  }

  /**
   * Seals one value under a data key from `generateDataKey` / `unwrapDataKey`: a normal
   * envelope that `decrypt` opens, with its own message id and derived AES key.
   * Synchronous: no KMS call.
   *
   * Whoever knows the data key reads the value. Materials from `unwrapDataKey` come from a
   * stored value, which an encrypt-only key holder may have made under a key they know:
   * use them only under the contract written on `unwrapDataKey` (the value opened under the
   * new data's context, and the key generated by this process for that record), else seal
   * under fresh materials from `generateDataKey`.
   */
  encryptWithDataKey(
    materials: DataKeyMaterials,
    plaintext: PlaintextInput,
    options: EncryptOptions<"text"> & { output: "text" },
  ): string;
  encryptWithDataKey(
    materials: DataKeyMaterials,
    plaintext: PlaintextInput,
    options?: EncryptOptions<"binary">,
  ): Buffer;
  encryptWithDataKey(
    materials: DataKeyMaterials,
    plaintext: PlaintextInput,
    options?: EncryptOptions,
  ): Buffer | string;
  encryptWithDataKey(
    materials: DataKeyMaterials,
    plaintext: PlaintextInput,
    options: EncryptOptions = {},
  ): Buffer | string {
    if (
      !(materials?.dataKey instanceof Uint8Array) ||
      materials.dataKey.length !== DATA_KEY_LENGTH
    ) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        "encryptWithDataKey needs materials from generateDataKey or unwrapDataKey.",
      );
    }
    checkEntryCount(materials.entries.length);
    for (const entry of materials.entries) checkEntry(entry);
    const canonical = encodeContext(options.context);
    const flags = this.#storeContext ? FLAG_CONTEXT_STORED : 0;
    const pad = choosePad(options.pad, this.#pad);
    const data = plaintextBytes(plaintext);
    const sealed = seal(materials, data, flags, canonical, this.#signer, pad);
    return options.output === "text" ? toText(sealed) : sealed;
  }

  /** Header facts of a sealed value (versions, providers, key references, sizes). No secrets. */
  inspect(sealed: Sealed): EnvelopeInfo {
    return inspectEnvelope(sealed);
  }

  /** Unwrap-cache counters (all zero when the cache is disabled). */
  cacheStats(): UnwrapCacheStats & { dataKeysReused: number } {
    const stats = this.#cache?.stats() ?? {
      hits: 0,
      misses: 0,
      evictions: 0,
      inflightJoins: 0,
      size: 0,
    };
    return { ...stats, dataKeysReused: this.#reuse?.reused ?? 0 };
  }

  /**
   * Asks every provider that can (Vault, Azure) to re-read its current key version, so
   * that after a rotation `rewrap` targets the new version instead of treating entries on
   * the old one as current. Call it before a rewrap job.
   */
  async refreshKeys(): Promise<void> {
    const all = new Set([...this.#encryptors, ...this.#decryptors]);
    await Promise.all([...all].map((p) => (supportsRefresh(p) ? p.refresh() : undefined)));
  }

  /**
   * Decrypts many values: values that share a data key (the fields of one record) unwrap it
   * once, at most `concurrency` distinct data keys are unwrapped at a time, and each result
   * comes back in input order as `{ ok: true, value }` or `{ ok: false, error }` (a bad
   * value does not fail the batch). Needs the unwrap cache (the default) to share unwraps.
   */
  decryptMany(
    items: readonly DecryptManyItem[],
    options: BulkOptions & { as: "text" },
  ): Promise<BulkResult<string>[]>;
  decryptMany(
    items: readonly DecryptManyItem[],
    options?: BulkOptions & { as?: "bytes" },
  ): Promise<BulkResult<Buffer>[]>;
  decryptMany(
    items: readonly DecryptManyItem[],
    options: BulkOptions & { as?: "bytes" | "text" } = {},
  ): Promise<BulkResult<Buffer | string>[]> {
    return decryptGrouped(items, options ?? {}, (item) =>
      this.decrypt(item.sealed, { context: item.context, as: options?.as }),
    );
  }

  /** Encrypts many values, at most `concurrency` at a time; per-item results in input order. */
  encryptMany(
    items: readonly EncryptManyItem[],
    options: BulkOptions & { output: "text" },
  ): Promise<BulkResult<string>[]>;
  encryptMany(
    items: readonly EncryptManyItem[],
    options?: BulkOptions & { output?: "binary" },
  ): Promise<BulkResult<Buffer>[]>;
  encryptMany(
    items: readonly EncryptManyItem[],
    options: BulkOptions & { output?: "binary" | "text" } = {},
  ): Promise<BulkResult<Buffer | string>[]> {
    return encryptEach(items, options ?? {}, (item) =>
      this.encrypt(item.plaintext, { context: item.context, output: options?.output }),
    );
  }

  /**
   * Readiness check for startup and health endpoints: wraps and unwraps a canary data key
   * with every configured provider and reports, per provider, ok / the typed error and the
   * latency. Touches no application data and caches nothing. `report.ok` is false when a
   * provider failed; see ProviderReadiness for `degraded` (encrypt-only keys and the like).
   */
  check(options?: ReadinessOptions): Promise<ReadinessReport> {
    return checkReadiness(this.#encryptors, this.#decryptors, options);
  }

  /** Zeroes and drops every cached data key (after a suspected compromise, or on shutdown). */
  clearCaches(): void {
    this.#cache?.clear();
    this.#reuse?.clear();
  }

  /** The providers in use, by id and key reference only. */
  describe(): { encrypt: string[]; decrypt: string[] } {
    const name = (p: KeyProvider) => `${p.id}:${p.keyRef}`;
    return { encrypt: this.#encryptors.map(name), decrypt: this.#decryptors.map(name) };
  }

  toJSON(): { encrypt: string[]; decrypt: string[] } {
    return this.describe();
  }

  [inspect.custom](): string {
    return `Envelope ${inspect(this.describe())}`;
  }

  async #freshMaterials(request: KeyRequest): Promise<EncryptionMaterials> {
    const [primary, ...others] = this.#encryptors as [KeyProvider, ...KeyProvider[]];
    let dataKey: Buffer;
    let first: WrappedKey;
    if (supportsDataKeyGeneration(primary)) {
      const generated = await this.#timed("wrap", primary, () => primary.generateDataKey(request));
      checkDataKey(generated?.dataKey, primary);
      dataKey = Buffer.from(generated.dataKey);
      generated.dataKey.fill(0);
      first = generated.entry;
    } else {
      dataKey = randomBytesPooled(DATA_KEY_LENGTH);
      first = await this.#timed("wrap", primary, () => primary.wrap(dataKey, request)).catch(
        (e) => {
          dataKey.fill(0);
          throw e;
        },
      );
    }
    try {
      const rest = await Promise.all(
        others.map((p) => this.#timed("wrap", p, () => p.wrap(dataKey, request))),
      );
      const entries = [first, ...rest];
      for (const [i, entry] of entries.entries()) checkReturnedEntry(entry, this.#encryptors[i]!);
      return { dataKey, entries };
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
  }

  /** Finds a configured provider for some entry, gets its data key, checks commitment, opens. */
  async #open(
    parts: EnvelopeParts,
    request: KeyRequest,
    aad: Uint8Array,
    report: (used: { provider: KeyProvider; keyRef: string; cacheHit: boolean }) => void,
  ): Promise<Buffer> {
    if (this.#cache) {
      // Warm path, synchronous from peek to open so the cache cannot evict (and zero) the
      // key meanwhile: first a message key already derived, then a cached data key.
      // Keyed by message id AND commitment: the message key was remembered after a
      // commitment check, and must not let an altered commitment skip that check.
      const messageId = latin1(parts.messageId) + latin1(parts.commitment);
      const remembered = this.#cache.peekMessageKey<MessageKeyOrigin>(messageId);
      if (remembered && this.#sameOrigin(remembered.origin, parts, request)) {
        const { provider, entry } = remembered.origin;
        report({ provider, keyRef: entry.keyRef, cacheHit: true });
        return openBody(remembered.key, parts.body, aad);
      }
      for (const [entry, provider] of this.#candidates(parts)) {
        if (!cachesUnwrap(provider)) continue;
        const key = this.#cacheKey(provider, entry, request);
        const cached = this.#cache.peek(key);
        if (!cached) continue;
        const keys = deriveMessageKeys(cached, parts.messageId);
        if (commitmentMatches(keys.commitment, parts.commitment)) {
          report({ provider, keyRef: entry.keyRef, cacheHit: true });
          // The commitment matched, so this key is right whatever the AAD: keep it (the
          // cache owns it from here), with the entry and KMS context it came from.
          const origin: MessageKeyOrigin = {
            provider,
            entry: { ...entry, wrapped: Buffer.from(entry.wrapped) },
            kms: provider.kmsContextKey?.(request.context) ?? "",
          };
          this.#cache.rememberMessageKey(key, messageId, keys.encryptionKey, origin);
          return openBody(keys.encryptionKey, parts.body, aad);
        }
        keys.encryptionKey.fill(0);
      }
    }
    const found = await this.#verifiedDataKey(parts, request);
    found.dataKey.fill(0);
    report({ provider: found.provider, keyRef: found.entry.keyRef, cacheHit: found.cacheHit });
    return openAndZero(found.encryptionKey, parts.body, aad);
  }

  /**
   * The data key of an envelope from the first entry a configured provider can unwrap
   * (through the unwrap cache unless the provider opts out), commitment-checked, with the
   * message key derived on the way. The caller zeroes `dataKey` and `encryptionKey`.
   */
  async #verifiedDataKey(
    parts: EnvelopeParts,
    request: KeyRequest,
  ): Promise<{
    dataKey: Buffer;
    encryptionKey: Buffer;
    provider: KeyProvider;
    entry: WrappedKey;
    cacheHit: boolean;
  }> {
    const failures: TriedEntry[] = [];
    for (const [entry, provider] of this.#candidates(parts)) {
      try {
        const found = await this.#entryKey(provider, entry, parts, request);
        return { ...found, provider, entry };
      } catch (error) {
        failures.push({ provider, entry, error: asEnvelopeError(error) });
      }
    }
    throw failures.length > 0 ? pickFailure(failures) : this.#noMatchingKey(parts);
  }

  /**
   * Unwraps one entry with one provider (through the unwrap cache unless the provider opts
   * out) and checks the result against the envelope's key commitment; throws
   * `ENVELOPE_COMMITMENT_MISMATCH` when it opens to another data key. The caller zeroes
   * `dataKey` and `encryptionKey`.
   */
  async #entryKey(
    provider: KeyProvider,
    entry: WrappedKey,
    parts: EnvelopeParts,
    request: KeyRequest,
  ): Promise<{ dataKey: Buffer; encryptionKey: Buffer; cacheHit: boolean }> {
    const cache = cachesUnwrap(provider) ? this.#cache : undefined;
    let dataKey: Buffer;
    let cacheHit = false;
    if (cache) {
      const key = this.#cacheKey(provider, entry, request);
      const cached = cache.peek(key);
      if (cached) {
        dataKey = Buffer.from(cached);
        cacheHit = true;
      } else {
        const loaded = await cache.load(key, () => this.#unwrap(provider, entry, request));
        dataKey = loaded.dataKey;
        cacheHit = loaded.joined;
      }
    } else {
      dataKey = takeDataKey(await this.#unwrap(provider, entry, request));
    }
    const keys = deriveMessageKeys(dataKey, parts.messageId);
    if (commitmentMatches(keys.commitment, parts.commitment)) {
      return { dataKey, encryptionKey: keys.encryptionKey, cacheHit };
    }
    keys.encryptionKey.fill(0);
    dataKey.fill(0);
    throw commitmentError(provider, entry);
  }

  /**
   * Whether `entry` opens to this envelope's data key (unwrap + key commitment), tried
   * with `preferred` and then the configured keys that handle it. False when it opens to
   * another key or no provider can unwrap it; with `strict`, the unwrap failure is thrown
   * instead (a native rewrap whose result cannot be checked must not be written).
   */
  async #opensToCommitment(
    entry: WrappedKey,
    preferred: readonly KeyProvider[],
    parts: EnvelopeParts,
    request: KeyRequest,
    strict = false,
  ): Promise<boolean> {
    const providers = [...new Set([...preferred, ...this.#decryptors])].filter(
      (p) => p.id === entry.providerId && p.handles(entry),
    );
    let failure: EnvelopeError | undefined;
    for (const provider of providers) {
      try {
        const found = await this.#entryKey(provider, entry, parts, request);
        found.dataKey.fill(0);
        found.encryptionKey.fill(0);
        return true;
      } catch (error) {
        const typed = asEnvelopeError(error);
        if (typed.code === "ENVELOPE_COMMITMENT_MISMATCH") return false;
        failure ??= typed;
      }
    }
    if (strict && failure) throw failure;
    return false;
  }

  /**
   * The proof of a native rewrap's entry that also yields its keys: unwrapped with the
   * target (then the configured keys that handle it) and checked against the key
   * commitment. Throws `nativeRewrapError` when it opens to another data key, and the
   * unwrap failure when no provider can open it (an unchecked entry must not be written).
   */
  async #nativeEntryKey(
    entry: WrappedKey,
    target: KeyProvider,
    parts: EnvelopeParts,
    request: KeyRequest,
  ): Promise<VerifiedKey> {
    const providers = [...new Set([target, ...this.#decryptors])].filter(
      (p) => p.id === entry.providerId && p.handles(entry),
    );
    let failure: EnvelopeError | undefined;
    for (const provider of providers) {
      try {
        const found = await this.#entryKey(provider, entry, parts, request);
        return { dataKey: found.dataKey, encryptionKey: found.encryptionKey, entry };
      } catch (error) {
        const typed = asEnvelopeError(error);
        if (typed.code === "ENVELOPE_COMMITMENT_MISMATCH") throw nativeRewrapError(target, entry);
        failure ??= typed;
      }
    }
    throw failure ?? nativeRewrapError(target, entry);
  }

  /**
   * Whether a remembered message key may open `parts`: the envelope must still carry the
   * entry the key came from, and the KMS-level context must be the one it was unwrapped
   * under. That is exactly what the data key's cache lookup would have required, so a
   * tampered entry or another KMS context falls through to the normal path.
   */
  #sameOrigin(origin: MessageKeyOrigin, parts: EnvelopeParts, request: KeyRequest): boolean {
    const { provider, entry, kms } = origin;
    const carried = parts.entries.some(
      (e) =>
        e.providerId === entry.providerId &&
        e.keyRef === entry.keyRef &&
        Buffer.compare(e.wrapped, entry.wrapped) === 0,
    );
    return carried && (provider.kmsContextKey?.(request.context) ?? "") === kms;
  }

  /**
   * (entry, provider) pairs in envelope order, then configuration order. A value with more
   * entries that some configured key handles than `maxEntriesTried` is refused before any
   * of them is tried (the entries are the attacker's to multiply; the providers per entry
   * are bounded by this client's configuration).
   */
  #candidates(parts: EnvelopeParts): [WrappedKey, KeyProvider][] {
    const out: [WrappedKey, KeyProvider][] = [];
    let entries = 0;
    for (const entry of parts.entries) {
      const before = out.length;
      for (const provider of this.#decryptors) {
        if (provider.id === entry.providerId && provider.handles(entry))
          out.push([entry, provider]);
      }
      if (out.length > before) entries++;
    }
    if (entries > this.#maxEntriesTried) {
      throw entryLimitError(entries, this.#maxEntriesTried);
    }
    return out;
  }

  async #unwrap(
    provider: KeyProvider,
    entry: WrappedKey,
    request: KeyRequest,
  ): Promise<Uint8Array> {
    const dataKey = await this.#timed(
      "unwrap",
      provider,
      () => provider.unwrap(entry, request),
      { cacheHit: false },
      entry.keyRef,
    );
    // Whoever can write the stored value can make an entry unwrap to the wrong length:
    // report it as a bad entry, not as a provider bug.
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
      if (dataKey instanceof Uint8Array) dataKey.fill(0);
      throw new ProviderError(
        "ENVELOPE_UNWRAP_FAILED",
        `Key provider "${provider.id}" unwrapped a data key that is not 32 bytes: the wrapped-key entry is corrupted or was tampered with.`,
        { details: { provider: provider.id, keyRef: printable(entry.keyRef) } },
      );
    }
    return dataKey;
  }

  async #timed<T>(
    operation: AuditEvent["operation"],
    provider: KeyProvider,
    call: () => Promise<T>,
    extra: Partial<AuditEvent> = {},
    keyRef = provider.keyRef,
  ): Promise<T> {
    const started = this.#audit ? performance.now() : 0;
    try {
      const result = await call();
      if (this.#audit)
        emit(this.#audit, auditEvent(operation, provider.id, keyRef, started, extra));
      return result;
    } catch (error) {
      if (this.#audit)
        emit(this.#audit, auditEvent(operation, provider.id, keyRef, started, extra, error));
      // Callers of unwrap type its failures (asEnvelopeError); an untyped error from wrap,
      // generateDataKey or a native rewrap must not escape encrypt / rewrap untyped either.
      throw operation === "unwrap" ? error : wrapFailure(error, provider);
    }
  }

  #event(
    operation: AuditEvent["operation"],
    provider: KeyProvider | undefined,
    started: number,
    extra: Partial<AuditEvent>,
    error?: unknown,
    keyRef = provider?.keyRef ?? "none",
  ): void {
    if (!this.#audit) return;
    emit(this.#audit, auditEvent(operation, provider?.id ?? "none", keyRef, started, extra, error));
  }

  #cacheKey(provider: KeyProvider, entry: WrappedKey, request: KeyRequest): string {
    const wrapped = Buffer.from(
      entry.wrapped.buffer,
      entry.wrapped.byteOffset,
      entry.wrapped.length,
    );
    const kms = provider.kmsContextKey?.(request.context) ?? "";
    return `${provider.id}\u0000${entry.keyRef}\u0000${wrapped.toString("base64")}\u0000${kms}`;
  }

  #reuseKey(context: EncryptionContext): string {
    return this.#encryptors.map((p) => p.kmsContextKey?.(context) ?? "").join("\u0000");
  }

  #noMatchingKey(parts: EnvelopeParts): DecryptionError {
    // Read from the stored value: escaped and capped before it is shown.
    const present = parts.entries
      .map((e) => printable(`${e.providerId}:${e.keyRef}`, 100))
      .join(", ");
    const configured = this.#decryptors.map((p) => `${p.id}:${p.keyRef}`).join(", ");
    return new DecryptionError(
      "ENVELOPE_NO_MATCHING_KEY",
      `No configured key can unwrap this envelope. It was wrapped under [${present}]; this client has [${configured}]. Add the old key to the decrypt list (ENVELOPE_DECRYPT_KEYS / config.decrypt).`,
      { details: { wrappedUnder: present, configured: printable(configured, 1000) } },
    );
  }
}
