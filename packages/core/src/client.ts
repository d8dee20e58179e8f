// The public client as a façade: the key work is in keyring/ (providers, data keys, the
// unwrap cache), rewrap/ (planner and executor) and crypto/seal.ts. Over 300 lines only
// because of the public methods' overloads and TSDoc (about half the file), which belong with them.
import { inspect } from "node:util";
import { Auditor } from "./audit.js";
import {
  type BulkOptions,
  type BulkResult,
  type DecryptManyItem,
  decryptGrouped,
  type EncryptManyItem,
  encryptEach,
} from "./bulk.js";
import { type PlaintextInput, plaintextBytes, utf8Text } from "./bytes.js";
import { ContextMemo } from "./cache/context-memo.js";
import { DataKeyCache } from "./cache/data-key-cache.js";
import { UnwrapCache, type UnwrapCacheStats } from "./cache/unwrap-cache.js";
import type {
  DecryptOptions,
  EncryptOptions,
  EnvelopeOptions,
  RewrapOptions,
} from "./client-options.js";
import { choosePad, padRule } from "./config/padding.js";
import { writerSuite } from "./config/suite.js";
import { bodyAad } from "./crypto/aad.js";
import { type DataKeyMaterials, dataKeyMaterials } from "./crypto/materials.js";
import { seal } from "./crypto/seal.js";
import { checkSignature, VerifiedSignatures } from "./crypto/signature.js";
import {
  loadSigningKey,
  loadTrustedSigners,
  type SigningKey,
  type TrustedSigners,
} from "./crypto/signing-keys.js";
import { ConfigError } from "./errors.js";
import { DATA_KEY_LENGTH, FLAG_CONTEXT_STORED } from "./format/constants.js";
import {
  type EncryptionContext,
  encodeContext,
  encodeSnapshot,
  snapshotContext,
} from "./format/context.js";
import { type PadRule, stripPadding } from "./format/padding.js";
import {
  type EnvelopeInfo,
  inspectEnvelope,
  parse,
  resolveContext,
  type Sealed,
} from "./format/parse.js";
import { checkPurpose, purposeFlags } from "./format/purpose.js";
import { toText } from "./format/text.js";
import { checkEntry, checkEntryCount } from "./format/validate.js";
import type { BulkOpen } from "./keyring/bulk-open.js";
import { reuseCacheKey } from "./keyring/cache-keys.js";
import { KeyRing, type OpenedBy } from "./keyring/key-ring.js";
import { supportsRefresh } from "./providers/capabilities.js";
import type { KeyProvider } from "./providers/types.js";
import { checkReadiness, type ReadinessOptions, type ReadinessReport } from "./readiness.js";
import { rewrapSealed, rewrapTargets } from "./rewrap/rewrap.js";

export type {
  DecryptOptions,
  EncryptOptions,
  EnvelopeOptions,
  RewrapOptions,
} from "./client-options.js";
export type { DataKeyMaterials } from "./crypto/materials.js";

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
  readonly #ring: KeyRing;
  readonly #cache: UnwrapCache | undefined;
  readonly #reuse: DataKeyCache | undefined;
  readonly #storeContext: boolean;
  readonly #audit: Auditor;
  readonly #signer: SigningKey | undefined;
  readonly #trusted: TrustedSigners | undefined;
  readonly #verified: VerifiedSignatures | undefined;
  readonly #pad: PadRule | undefined;
  readonly #suite: number;
  readonly #contexts = new ContextMemo();
  #closed = false;

  constructor(options: EnvelopeOptions) {
    this.#audit = new Auditor(options.onAudit);
    const cache = options.cache === false ? undefined : new UnwrapCache(options.cache ?? {});
    this.#ring = new KeyRing({
      encrypt: options.encrypt,
      decrypt: options.decrypt,
      cache,
      auditor: this.#audit,
      maxEntriesTried: options.maxEntriesTried,
    });
    this.#cache = cache;
    this.#reuse = options.dataKeyReuse ? new DataKeyCache(options.dataKeyReuse) : undefined;
    this.#storeContext = options.storeContext ?? false;
    this.#signer =
      options.signing === undefined
        ? undefined
        : loadSigningKey(options.signing?.key, "signing.key");
    this.#trusted =
      options.trustedSigners === undefined ? undefined : loadTrustedSigners(options.trustedSigners);
    // With caching on, a signature verified once is not verified again (see the class).
    this.#verified = options.cache === false ? undefined : new VerifiedSignatures();
    this.#pad = padRule(options.pad);
    this.#suite = writerSuite(options.suite);
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
    this.#checkOpen();
    const started = this.#audit.start();
    const primary = this.#ring.encryptors[0]!;
    let reused = false;
    let data: Uint8Array | undefined;
    try {
      data = plaintextBytes(plaintext);
      // Encoded before defaulting, so `context: null` is refused as decrypt refuses it.
      // Read once (issue 11): the bytes authenticated and the context a KMS binds agree.
      const given = snapshotContext(options.context);
      const canonical = this.#contexts.encode(given);
      const context = given ?? {};
      const purpose = purposeFlags(options);
      const flags = (this.#storeContext ? FLAG_CONTEXT_STORED : 0) | purpose;
      const pad = purpose === 0 ? choosePad(options.pad, this.#pad) : undefined;
      // A stream key gets a data key of its own, never one shared with values.
      const reuse = purpose === 0 ? this.#reuse : undefined;
      const reuseKey = reuse ? reuseCacheKey(this.#ring.encryptors, context) : "";
      let materials = reuse?.take(reuseKey, data.length);
      reused = materials !== undefined;
      if (!materials) {
        materials = await this.#ring.freshMaterials({ context });
        reuse?.put(reuseKey, materials, data.length);
      }
      const sealed = seal(materials, data, flags, canonical, this.#signer, pad, this.#suite);
      if (!reused) materials.dataKey.fill(0);
      this.#audit.event("encrypt", primary, started, { dataKeyReused: reused });
      return options.output === "text" ? toText(sealed) : sealed;
    } catch (error) {
      this.#audit.event("encrypt", primary, started, { dataKeyReused: reused }, error);
      throw error;
    } finally {
      // A string's UTF-8 copy sits in node's shared Buffer pool, beside the envelope just
      // returned; zeroed, it cannot travel with a `sealed.buffer` stored by mistake.
      if (typeof plaintext === "string") data?.fill(0);
    }
  }

  /** Decrypts a sealed value (binary or `ev1:` text) with whichever configured key can open it. */
  decrypt(sealed: Sealed, options: DecryptOptions<"text"> & { as: "text" }): Promise<string>;
  decrypt(sealed: Sealed, options?: DecryptOptions<"bytes">): Promise<Buffer>;
  decrypt(sealed: Sealed, options?: DecryptOptions): Promise<Buffer | string>;
  decrypt(sealed: Sealed, options: DecryptOptions | undefined = {}): Promise<Buffer | string> {
    // Not async itself: returning #decrypt's promise from an async function would add
    // microtask ticks to every decrypt (the warm path is a few µs).
    return this.#decrypt(sealed, options ?? {});
  }

  /** `decrypt`; `bulk` is decryptMany's part of an open (see KeyRing.open). */
  async #decrypt(
    sealed: Sealed,
    options: DecryptOptions,
    bulk?: BulkOpen,
  ): Promise<Buffer | string> {
    this.#checkOpen();
    const started = this.#audit.start();
    // keyRef: the entry's key that opened the value, which after a rotation is not the
    // provider's current keyRef.
    let used: Partial<OpenedBy> & { cacheHit: boolean } = { cacheHit: false };
    try {
      const parts = parse(sealed);
      checkPurpose(parts.flags, options); // before any unwrap: a stream key is not a value
      const given = snapshotContext(options.context);
      // Without a stored context the canonical bytes are the given context's (memoized).
      const { context, canonical } = parts.storedContext
        ? resolveContext(parts, given)
        : { context: given ?? {}, canonical: this.#contexts.encode(given) };
      // Signed mode: refuse unsigned / untrusted values and check the signature before
      // any cache lookup or unwrap (the warm path included).
      checkSignature(parts, canonical, this.#trusted, this.#verified);
      const aad = bodyAad(parts.flags, parts.messageId, canonical, parts.suite);
      // An unnamed closure: tsx (which `pnpm bench` runs core's sources with) wraps a named
      // one in a naming helper on every call.
      const opened = await this.#ring.open(
        parts,
        { context },
        aad,
        (u: OpenedBy) => {
          used = u;
        },
        bulk,
      );
      const plaintext = stripPadding(opened, parts.flags);
      const extra = { cacheHit: used.cacheHit };
      this.#audit.event("decrypt", used.provider, started, extra, undefined, used.keyRef);
      return options.as === "text" ? utf8Text(plaintext) : plaintext;
    } catch (error) {
      const extra = { cacheHit: used.cacheHit };
      this.#audit.event("decrypt", used.provider, started, extra, error, used.keyRef);
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
    this.#checkOpen();
    const started = this.#audit.start();
    const to = options.to ?? this.#ring.encryptors;
    const named = (Array.isArray(to) ? to[0] : to) as KeyProvider | undefined;
    try {
      const targets = rewrapTargets(to);
      const { out, native } = await rewrapSealed(this.#ring, sealed, { ...options, targets });
      this.#audit.event("rewrap", named, started, { native });
      return typeof sealed === "string" ? toText(out) : out;
    } catch (error) {
      this.#audit.event("rewrap", named, started, {}, error);
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
    this.#checkOpen();
    const given = snapshotContext(options.context);
    encodeSnapshot(given);
    const context = given ?? {};
    const materials = await this.#ring.freshMaterials({ context });
    // Values sealed with this key are usually read back soon (a record just written):
    // prime the unwrap cache so that costs no KMS call.
    this.#ring.prime(materials, { context });
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
    this.#checkOpen();
    const parts = parse(sealed);
    checkPurpose(parts.flags, {}); // a stream key envelope's data key is not a record's
    const { context, canonical } = resolveContext(parts, snapshotContext(options.context));
    // Signed mode: a planted unsigned (or untrusted) value must not hand out its data key
    // for new data, which this client would then sign as genuine.
    checkSignature(parts, canonical, this.#trusted, this.#verified);
    const found = await this.#ring.verifiedDataKey(parts, { context });
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
    this.#checkOpen();
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
    try {
      const sealed = seal(materials, data, flags, canonical, this.#signer, pad, this.#suite);
      return options.output === "text" ? toText(sealed) : sealed;
    } finally {
      if (typeof plaintext === "string") data.fill(0); // as in encrypt
    }
  }

  /** Header facts of a sealed value (versions, providers, key references, sizes). No secrets. */
  inspect(sealed: Sealed): EnvelopeInfo {
    return inspectEnvelope(sealed);
  }

  /** Unwrap-cache counters (all zero when the cache is disabled). */
  cacheStats(): UnwrapCacheStats & { dataKeysReused: number } {
    const none = { hits: 0, misses: 0, evictions: 0, inflightJoins: 0, size: 0 };
    const stats = this.#cache?.stats() ?? none;
    return { ...stats, dataKeysReused: this.#reuse?.reused ?? 0 };
  }

  /**
   * Asks every provider that can (Vault, Azure) to re-read its current key version, so
   * that after a rotation `rewrap` targets the new version instead of treating entries on
   * the old one as current. Call it before a rewrap job.
   */
  async refreshKeys(): Promise<void> {
    const all = new Set([...this.#ring.encryptors, ...this.#ring.decryptors]);
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
  async decryptMany(
    items: readonly DecryptManyItem[],
    options: BulkOptions & { as?: "bytes" | "text" } = {},
  ): Promise<BulkResult<Buffer | string>[]> {
    const as = options?.as;
    return decryptGrouped(items, options ?? {}, (item, bulk) =>
      this.#decrypt(item.sealed, { context: item.context, as }, bulk),
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
  async check(options?: ReadinessOptions): Promise<ReadinessReport> {
    this.#checkOpen(); // a closed client is not ready, whatever its providers say
    return checkReadiness(this.#ring.encryptors, this.#ring.decryptors, options);
  }

  /** Zeroes and drops every cached data key (after a suspected compromise, or on shutdown). */
  clearCaches(): void {
    this.#cache?.clear();
    this.#reuse?.clear();
  }

  /**
   * Shuts the client down: stops the unwrap cache's sweep timer and zeroes every cached
   * key (unwrapped data keys, remembered message keys, reused data keys). Later calls
   * fail with `ENVELOPE_CLOSED`. Safe to call twice. `await using` calls it too.
   *
   * @example
   * await using envelope = await createEnvelope({ encrypt: "local-aes://env/MASTER_KEY" });
   * // … closed (keys zeroed, timer stopped) when the block is left
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cache?.close();
    this.#reuse?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (!this.#closed) return;
    throw new ConfigError(
      "ENVELOPE_CLOSED",
      "This Envelope client was closed (close() or `await using`), and its cached keys zeroed. Create a new client to go on.",
    );
  }

  /** The providers in use, by id and key reference only. */
  describe(): { encrypt: string[]; decrypt: string[] } {
    const name = (p: KeyProvider) => `${p.id}:${p.keyRef}`;
    return { encrypt: this.#ring.encryptors.map(name), decrypt: this.#ring.decryptors.map(name) };
  }

  toJSON(): { encrypt: string[]; decrypt: string[] } {
    return this.describe();
  }

  [inspect.custom](): string {
    return `Envelope ${inspect(this.describe())}`;
  }
}
