/** Envelope format v1 constants. docs/FORMAT.md is the normative description. */

export const FORMAT_VERSION = 0x01;

/** Suite 0x01: AES-256-GCM body, HKDF-SHA256 key derivation, HKDF-derived key commitment. */
export const SUITE_AES256GCM_HKDF_SHA256_COMMIT = 0x01;
/**
 * Suite 0x03: suite 0x01's layout and AEAD, but the message key and commitment come from
 * one SHA-512 call (NIST SP 800-56C one-step KDF, docs/FORMAT.md §15) instead of HKDF's
 * three HMACs. Opt-in for writers: readers before this suite existed refuse it.
 */
export const SUITE_AES256GCM_SHA512_COMMIT = 0x03;

export const DATA_KEY_LENGTH = 32;
export const MESSAGE_ID_LENGTH = 32;
export const COMMITMENT_LENGTH = 32;
export const TAG_LENGTH = 16;
export const NONCE_LENGTH = 12;

/** Flag bit 0: the canonical encryption context is stored in the envelope. */
export const FLAG_CONTEXT_STORED = 0x01;
/**
 * Flag bit 1: the envelope is a stream key envelope (its plaintext is a stream key, see
 * docs/STREAMING.md). `decrypt` refuses it; `decryptStream` requires it. In the AAD, so
 * it cannot be flipped without breaking the tag.
 */
export const FLAG_STREAM_KEY = 0x02;
/**
 * Flag bit 2: the GCM plaintext is the value followed by ISO/IEC 7816-4 padding (0x80,
 * then zero or more 0x00), docs/FORMAT.md §2.3. In the AAD (and the signed bytes), so it
 * cannot be flipped; never set together with bit 1 (a stream key is never padded).
 */
export const FLAG_PADDED = 0x04;
export const KNOWN_FLAGS = FLAG_CONTEXT_STORED | FLAG_STREAM_KEY | FLAG_PADDED;
/** The first byte of ISO/IEC 7816-4 padding; the rest are 0x00. */
export const PADDING_MARKER = 0x80;

export const MAX_ENTRIES = 16;
export const MAX_PROVIDER_ID_LENGTH = 64;
export const MAX_KEY_REF_LENGTH = 2048;
export const MAX_WRAPPED_KEY_LENGTH = 4096;
/** Single-shot bodies up to 1 GiB; larger values belong in the streaming format. */
export const MAX_BODY_LENGTH = 2 ** 30;

export const MAX_CONTEXT_PAIRS = 1024;
export const MAX_CONTEXT_KEY_LENGTH = 1024;
export const MAX_CONTEXT_VALUE_LENGTH = 8192;
export const MAX_CONTEXT_BYTES = 65535;

/** Prefix of the text form: `ev1:` followed by unpadded base64url. */
export const TEXT_PREFIX = "ev1:";

/** Fixed offsets of the v1 header. */
export const OFFSET_MESSAGE_ID = 3;
export const OFFSET_COMMITMENT = OFFSET_MESSAGE_ID + MESSAGE_ID_LENGTH;
export const OFFSET_ENTRY_COUNT = OFFSET_COMMITMENT + COMMITMENT_LENGTH;

/** HKDF info string: fixed, ASCII. */
export const HKDF_INFO = "envelope:v1:suite1:key+commitment";
/** Suite 0x03 KDF label (FixedInfo prefix, §15.2): fixed, ASCII, 33 bytes. */
export const SUITE3_KDF_INFO = "envelope:v1:suite3:key+commitment";

/** Provider ids are short lowercase ASCII names such as `local-rsa` or `aws-kms`. */
export const PROVIDER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Suite 0x02 (signed mode): suite 0x01 plus an Ed25519 signature by the writer. The
 * signer's 32-byte public key and the 64-byte signature sit at fixed offsets right after
 * the commitment, so entries (which rewrap replaces) follow them and stay unsigned.
 */
export const SUITE_SIGNED_ED25519 = 0x02;
export const SIGNER_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
export const OFFSET_SIGNER_KEY = OFFSET_ENTRY_COUNT;
export const OFFSET_SIGNATURE = OFFSET_SIGNER_KEY + SIGNER_KEY_LENGTH;
/** Where `entryCount` sits in a suite 0x02 value. */
export const OFFSET_ENTRY_COUNT_SIGNED = OFFSET_SIGNATURE + SIGNATURE_LENGTH;
/** First field of the bytes an Ed25519 signature of suite 0x02 covers: fixed, ASCII. */
export const SIGNATURE_DOMAIN = "envelope:v1:suite2:ed25519-signature";
