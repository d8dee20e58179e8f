// An independent decoder/decryptor of the Envelope format v1, written from docs/FORMAT.md
// alone (no code from packages/*/src), with node:crypto only. Section numbers (§) refer to
// docs/FORMAT.md. It is a test oracle: it never prints keys or plaintexts.
import {
  constants,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  verify as edVerify,
  hkdfSync,
  type KeyObject,
  privateDecrypt,
  timingSafeEqual,
} from "node:crypto";

export class SpecError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const fail = (code: string, message: string): never => {
  throw new SpecError(code, message);
};
const badFormat = (message: string): never => fail("ENVELOPE_BAD_FORMAT", message);

// §2, §8 limits
const MAX_ENTRIES = 16;
const MAX_PROVIDER_ID = 64;
const MAX_KEY_REF = 2048;
const MAX_WRAPPED = 4096;
const MAX_BODY = 2 ** 30;
const MAX_TEXT = 1_432_005_295;
const MAX_PAIRS = 1024;
const MAX_CTX_KEY = 1024;
const MAX_CTX_VALUE = 8192;
const MAX_CTX_BYTES = 65535;

const HKDF_INFO = Buffer.from("envelope:v1:suite1:key+commitment", "ascii"); // §5.1
const SUITE3_LABEL = Buffer.from("envelope:v1:suite3:key+commitment", "ascii"); // §15.2
const SIG_DOMAIN = Buffer.from("envelope:v1:suite2:ed25519-signature", "ascii"); // §14.2
const AES_FP_LABEL = Buffer.from("envelope:local-aes:fingerprint:", "ascii"); // §10.1

/** Strict UTF-8 (§13: invalid is an error, a leading U+FEFF is kept). */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
function strictUtf8(bytes: Uint8Array, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return badFormat(`${field} is not valid UTF-8`);
  }
}

export interface Entry {
  providerId: string;
  keyRef: string;
  wrapped: Buffer;
}

export interface Parsed {
  bytes: Buffer;
  version: number;
  suite: number;
  flags: number;
  messageId: Buffer;
  commitment: Buffer;
  signerKey?: Buffer;
  signature?: Buffer;
  entries: Entry[];
  storedContext?: Buffer;
  ciphertextLength: number;
  ciphertext: Buffer;
  tag: Buffer;
}

// §9 text form
export function textToBytes(text: string): Buffer {
  if (!text.startsWith("ev1:")) badFormat("missing the ev1: prefix");
  if (text.length > MAX_TEXT) fail("ENVELOPE_LIMIT_EXCEEDED", "text form too long");
  const payload = text.slice(4);
  if (!/^[A-Za-z0-9_-]*$/.test(payload)) badFormat("character outside base64url");
  if (payload.length % 4 === 1) badFormat("payload length 1 mod 4");
  const bytes = Buffer.from(payload, "base64url");
  if (bytes.toString("base64url") !== payload) badFormat("non-canonical base64url");
  return bytes;
}

// §2.1 (with §14.1 for suite 0x02)
export function parseBinary(input: Uint8Array): Parsed {
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let pos = 0;
  const take = (n: number, field: string): Buffer => {
    if (b.length - pos < n) badFormat(`truncated at ${field}`);
    const out = b.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (field: string) => take(1, field)[0] as number;
  const u16 = (field: string) => take(2, field).readUInt16BE(0);
  const u32 = (field: string) => take(4, field).readUInt32BE(0);

  const version = u8("version");
  if (version !== 0x01) fail("ENVELOPE_UNSUPPORTED_VERSION", "version");
  const suite = u8("suite");
  if (suite !== 0x01 && suite !== 0x02 && suite !== 0x03)
    fail("ENVELOPE_UNSUPPORTED_SUITE", "suite");
  const flags = u8("flags");
  if ((flags & 0xf8) !== 0) badFormat("unknown flag bit");
  if ((flags & 0x06) === 0x06) badFormat("stream key envelope cannot be padded");
  const messageId = take(32, "messageId");
  const commitment = take(32, "commitment");
  let signerKey: Buffer | undefined;
  let signature: Buffer | undefined;
  if (suite === 0x02) {
    signerKey = take(32, "signerKey");
    signature = take(64, "signature");
  }
  const entryCount = u8("entryCount");
  if (entryCount === 0) badFormat("no wrapped-key entries");
  if (entryCount > MAX_ENTRIES) badFormat("too many entries");
  const entries: Entry[] = [];
  for (let i = 0; i < entryCount; i++) {
    const pl = u8(`entries[${i}].providerIdLength`);
    if (pl < 1 || pl > MAX_PROVIDER_ID) badFormat("providerIdLength");
    const pid = take(pl, `entries[${i}].providerId`);
    for (let j = 0; j < pid.length; j++) {
      const c = pid[j] as number;
      const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c === 0x2d && j > 0);
      if (!ok) badFormat("providerId byte");
    }
    const kl = u16(`entries[${i}].keyRefLength`);
    if (kl < 1 || kl > MAX_KEY_REF) badFormat("keyRefLength");
    const keyRef = strictUtf8(take(kl, `entries[${i}].keyRef`), "keyRef");
    const wl = u16(`entries[${i}].wrappedLength`);
    if (wl < 1 || wl > MAX_WRAPPED) badFormat("wrappedLength");
    const wrapped = take(wl, `entries[${i}].wrapped`);
    entries.push({ providerId: pid.toString("ascii"), keyRef, wrapped });
  }
  let storedContext: Buffer | undefined;
  if (flags & 0x01) {
    const cl = u16("contextLength");
    if (cl < 2) badFormat("contextLength below 2");
    storedContext = take(cl, "context");
  }
  const ciphertextLength = u32("ciphertextLength");
  if (ciphertextLength > MAX_BODY) fail("ENVELOPE_LIMIT_EXCEEDED", "ciphertextLength over 2^30");
  if (flags & 0x04 && ciphertextLength === 0) badFormat("padded value with ciphertextLength 0");
  const ciphertext = take(ciphertextLength, "ciphertext");
  const tag = take(16, "tag");
  if (pos !== b.length) badFormat("trailing bytes");
  return {
    bytes: b,
    version,
    suite,
    flags,
    messageId,
    commitment,
    signerKey,
    signature,
    entries,
    storedContext,
    ciphertextLength,
    ciphertext,
    tag,
  };
}

const LONE_SURROGATE = /\p{Surrogate}/u;

// §4 canonical encoding (encoder side: violations are caller errors, ENVELOPE_BAD_INPUT)
export function encodeContext(context: Record<string, string> | undefined): Buffer {
  if (context === undefined) return Buffer.from([0, 0]);
  // §4: null, arrays, Maps, class instances, any non-plain object: ENVELOPE_BAD_INPUT.
  // "Plain" is read here as: prototype Object.prototype or null (the spec does not define it).
  const proto =
    context === null || typeof context !== "object" ? undefined : Object.getPrototypeOf(context);
  if (proto !== Object.prototype && proto !== null) {
    fail("ENVELOPE_BAD_INPUT", "context must be a plain object");
  }
  const pairs: [Buffer, Buffer][] = [];
  for (const [k, v] of Object.entries(context)) {
    if (typeof v !== "string") fail("ENVELOPE_BAD_INPUT", "context value not a string");
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v))
      fail("ENVELOPE_BAD_INPUT", "ill-formed string");
    const kb = Buffer.from(k, "utf8");
    const vb = Buffer.from(v, "utf8");
    if (kb.length < 1 || kb.length > MAX_CTX_KEY) fail("ENVELOPE_BAD_INPUT", "context key length");
    if (vb.length > MAX_CTX_VALUE) fail("ENVELOPE_BAD_INPUT", "context value length");
    pairs.push([kb, vb]);
  }
  if (pairs.length > MAX_PAIRS) fail("ENVELOPE_BAD_INPUT", "too many pairs");
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16be(pairs.length)];
  for (const [kb, vb] of pairs) parts.push(u16be(kb.length), kb, u16be(vb.length), vb);
  const out = Buffer.concat(parts);
  if (out.length > MAX_CTX_BYTES) fail("ENVELOPE_BAD_INPUT", "context too large");
  return out;
}

// §4.1 stored-context parser (violations are ENVELOPE_BAD_FORMAT)
export function parseStoredContext(ctx: Buffer): Record<string, string> {
  let pos = 0;
  const take = (n: number): Buffer => {
    if (ctx.length - pos < n) badFormat("stored context pair runs past contextLength");
    const out = ctx.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const count = take(2).readUInt16BE(0);
  if (count > MAX_PAIRS) badFormat("stored context: too many pairs");
  const out: Record<string, string> = {};
  let prev: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    const kl = take(2).readUInt16BE(0);
    if (kl < 1 || kl > MAX_CTX_KEY) badFormat("stored context: key length");
    const kb = take(kl);
    const vl = take(2).readUInt16BE(0);
    if (vl > MAX_CTX_VALUE) badFormat("stored context: value length");
    const vb = take(vl);
    if (prev && Buffer.compare(prev, kb) >= 0)
      badFormat("stored context: keys not strictly ascending");
    prev = kb;
    Object.defineProperty(out, strictUtf8(kb, "context key"), {
      value: strictUtf8(vb, "context value"),
      enumerable: true,
    });
  }
  if (pos !== ctx.length) badFormat("stored context: trailing bytes");
  return out;
}

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

// §5.1 (suites 0x01, 0x02) and §15.2 (suite 0x03)
export function deriveOkm(suite: number, dek: Buffer, messageId: Buffer): Buffer {
  if (suite === 0x03) {
    return createHash("sha512")
      .update(Buffer.concat([Buffer.from([0, 0, 0, 1]), dek, SUITE3_LABEL, messageId]))
      .digest();
  }
  return Buffer.from(hkdfSync("sha256", dek, messageId, HKDF_INFO, 64));
}

// §5.3
export function buildAad(p: Parsed, canonicalContext: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x01, p.suite, p.flags]), p.messageId, canonicalContext]);
}

// §14.2
export function signedBytes(p: Parsed, canonicalContext: Buffer): Buffer {
  return Buffer.concat([
    SIG_DOMAIN,
    p.bytes.subarray(0, 99),
    u16be(canonicalContext.length),
    canonicalContext,
    u32be(p.ciphertextLength),
    createHash("sha256").update(p.ciphertext).update(p.tag).digest(),
  ]);
}

const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
// §14.5.1: the seven listed y values (top bit cleared) are small order; y ≥ p is non-canonical.
const SMALL_ORDER = [
  "00".repeat(32),
  `01${"00".repeat(31)}`,
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  `ec${"ff".repeat(30)}7f`,
  `ed${"ff".repeat(30)}7f`,
  `ee${"ff".repeat(30)}7f`,
];
const P = 2n ** 255n - 19n;
function refusedSignerKey(signerKey: Buffer): boolean {
  const y = Buffer.from(signerKey);
  y[31] = (y[31] as number) & 0x7f;
  if (SMALL_ORDER.includes(y.toString("hex"))) return true;
  return BigInt(`0x${Buffer.from(y).reverse().toString("hex")}`) >= P;
}
function ed25519Verify(signerKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (refusedSignerKey(signerKey)) return false; // §14.5.1: ENVELOPE_BAD_SIGNATURE
  try {
    const key = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, signerKey]),
      format: "der",
      type: "spki",
    });
    return edVerify(null, message, key, signature);
  } catch {
    return false; // not a valid public key: also ENVELOPE_BAD_SIGNATURE (§14.5 3c)
  }
}

// §10.1
export function localAesKeyRef(key: Buffer): string {
  return createHash("sha256").update(AES_FP_LABEL).update(key).digest("hex").slice(0, 16);
}
function aesKeyUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  // RFC 3394 with the default IV; OpenSSL's id-aes256-wrap checks the integrity value.
  const d = createDecipheriv("id-aes256-wrap", kek, Buffer.from("A6A6A6A6A6A6A6A6", "hex"));
  return Buffer.concat([d.update(wrapped), d.final()]);
}

// §10.2
export function localRsaKeyRef(key: KeyObject): string {
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return createHash("sha256").update(spki).digest("hex").slice(0, 32);
}
function rsaUnwrap(key: KeyObject, wrapped: Buffer): Buffer {
  return privateDecrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    wrapped,
  );
}

/** A configured provider (§7 step 3): its id, and an unwrap for a keyRef it recognises. */
export interface Provider {
  id: string;
  recognises(keyRef: string): boolean;
  unwrap(keyRef: string, wrapped: Buffer): Buffer;
}

export function localAes(keys: Buffer[]): Provider {
  const byRef = new Map(keys.map((k) => [localAesKeyRef(k), k] as const));
  return {
    id: "local-aes",
    recognises: (ref) => byRef.has(ref),
    unwrap: (ref, wrapped) => aesKeyUnwrap(byRef.get(ref) as Buffer, wrapped),
  };
}

export function localRsa(pems: string[]): Provider {
  const byRef = new Map(
    pems.map((pem) => {
      const k = createPrivateKey(pem);
      return [localRsaKeyRef(k), k] as const;
    }),
  );
  return {
    id: "local-rsa",
    recognises: (ref) => byRef.has(ref),
    unwrap: (ref, wrapped) => rsaUnwrap(byRef.get(ref) as KeyObject, wrapped),
  };
}

export interface DecryptOptions {
  providers: Provider[];
  /** undefined = none supplied; {} = the empty context supplied (§4). */
  context?: Record<string, string>;
  /** raw 32-byte Ed25519 keys; present = signed mode (§14.5). */
  trustedSigners?: Buffer[];
  /** §7 step 3: default max(3, encrypting keys) = 3 for this decrypt-only reader. */
  maxEntriesTried?: number;
}

export interface Opened {
  plaintext: Buffer;
  context: Record<string, string> | undefined;
  parsed: Parsed;
}

/** §7 (with §14.5 for suite 0x02), in the spec's order of checks. */
export function decrypt(sealed: Buffer | string, opts: DecryptOptions): Opened {
  // 1. Parse
  const bytes = typeof sealed === "string" ? textToBytes(sealed) : sealed;
  const p = parseBinary(bytes);
  if (p.flags & 0x02) fail("ENVELOPE_WRONG_PURPOSE", "stream key envelope given to decrypt");

  // 2. Resolve the context
  let canonical: Buffer;
  let context: Record<string, string> | undefined;
  if (p.storedContext) {
    context = parseStoredContext(p.storedContext);
    if (opts.context !== undefined) {
      if (!encodeContext(opts.context).equals(p.storedContext)) {
        fail("ENVELOPE_CONTEXT_MISMATCH", "supplied context differs from the stored one");
      }
    }
    canonical = p.storedContext;
  } else {
    canonical = encodeContext(opts.context);
    context = opts.context;
  }

  // §14.5 step 3: signer checks
  if (opts.trustedSigners) {
    if (p.suite !== 0x02) fail("ENVELOPE_UNSIGNED", "signed mode, unsigned value");
    if (!opts.trustedSigners.some((k) => k.equals(p.signerKey as Buffer))) {
      fail("ENVELOPE_UNTRUSTED_SIGNER", "signer not pinned");
    }
  }
  if (p.suite === 0x02) {
    if (!ed25519Verify(p.signerKey as Buffer, signedBytes(p, canonical), p.signature as Buffer)) {
      fail("ENVELOPE_BAD_SIGNATURE", "signature does not verify");
    }
  }

  // 3. Find candidates: for each entry in order, for each provider in order
  const candidates: { entry: Entry; provider: Provider }[] = [];
  let entriesWithCandidate = 0;
  for (const entry of p.entries) {
    let any = false;
    for (const provider of opts.providers) {
      if (provider.id === entry.providerId && provider.recognises(entry.keyRef)) {
        candidates.push({ entry, provider });
        any = true;
      }
    }
    if (any) entriesWithCandidate++;
  }
  if (candidates.length === 0) fail("ENVELOPE_NO_MATCHING_KEY", "no provider recognises an entry");
  if (entriesWithCandidate > (opts.maxEntriesTried ?? 3)) {
    fail("ENVELOPE_LIMIT_EXCEEDED", "more entries to try than the reader's cap");
  }

  const aad = buildAad(p, canonical);
  const remembered: string[] = [];
  for (const { entry, provider } of candidates) {
    // 4. Unwrap
    let dek: Buffer;
    try {
      dek = provider.unwrap(entry.keyRef, entry.wrapped);
    } catch {
      remembered.push("ENVELOPE_UNWRAP_FAILED");
      continue;
    }
    if (dek.length !== 32) {
      remembered.push("ENVELOPE_UNWRAP_FAILED");
      continue;
    }
    // 5. Derive, 6. commitment
    const okm = deriveOkm(p.suite, dek, p.messageId);
    dek.fill(0);
    if (!timingSafeEqual(okm.subarray(32, 64), p.commitment)) {
      remembered.push("ENVELOPE_COMMITMENT_MISMATCH");
      okm.fill(0);
      continue;
    }
    // 7. Open (final either way)
    let gcmPlaintext: Buffer;
    try {
      const d = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12), {
        authTagLength: 16,
      });
      d.setAAD(aad);
      d.setAuthTag(p.tag);
      gcmPlaintext = Buffer.concat([d.update(p.ciphertext), d.final()]);
    } catch {
      return fail("ENVELOPE_DECRYPT_FAILED", "GCM tag check failed");
    } finally {
      okm.fill(0);
    }
    let plaintext = gcmPlaintext;
    if (p.flags & 0x04) {
      // §2.3: last non-zero byte must be 0x80
      let i = gcmPlaintext.length - 1;
      while (i >= 0 && gcmPlaintext[i] === 0) i--;
      if (i < 0 || gcmPlaintext[i] !== 0x80) {
        gcmPlaintext.fill(0);
        fail("ENVELOPE_BAD_PADDING", "malformed padding");
      }
      plaintext = gcmPlaintext.subarray(0, i);
    }
    return { plaintext, context, parsed: p };
  }
  // 8. Every candidate failed
  const code =
    remembered.find((c) => c !== "ENVELOPE_COMMITMENT_MISMATCH") ?? (remembered[0] as string);
  return fail(code, "every candidate failed");
}
