/**
 * One error hierarchy with stable codes. Messages say what to do and never carry key
 * material, plaintext or whole envelopes; safe, non-secret facts (provider id, key
 * reference, field name) go in `details`, the underlying error in `cause`.
 */

import { printable } from "./format/printable.js";

const MARK = Symbol.for("@envelope/core/EnvelopeError");

/** Every code an Envelope error can carry. Documented in docs/ERRORS.md; never renamed. */
export type ErrorCode =
  // envelope bytes
  | "ENVELOPE_BAD_FORMAT"
  | "ENVELOPE_UNSUPPORTED_VERSION"
  | "ENVELOPE_UNSUPPORTED_SUITE"
  | "ENVELOPE_LIMIT_EXCEEDED"
  // legacy values (@envelope/legacy, migrate)
  | "ENVELOPE_LEGACY_UNRECOGNIZED"
  // decryption
  | "ENVELOPE_DECRYPT_FAILED"
  | "ENVELOPE_COMMITMENT_MISMATCH"
  | "ENVELOPE_CONTEXT_MISMATCH"
  | "ENVELOPE_NO_MATCHING_KEY"
  | "ENVELOPE_WRONG_PURPOSE"
  | "ENVELOPE_BAD_PADDING"
  // signed mode (suite 0x02)
  | "ENVELOPE_UNSIGNED"
  | "ENVELOPE_UNTRUSTED_SIGNER"
  | "ENVELOPE_BAD_SIGNATURE"
  // caller input and configuration
  | "ENVELOPE_BAD_INPUT"
  | "ENVELOPE_BAD_CONFIG"
  | "ENVELOPE_PROVIDER_NOT_INSTALLED"
  | "ENVELOPE_BAD_KEY"
  | "ENVELOPE_ENCRYPT_ONLY"
  | "ENVELOPE_CLOSED"
  // batch jobs (@envelope/batch-rewrap, CLI)
  | "ENVELOPE_JOB_IN_PROGRESS"
  // providers
  | "ENVELOPE_UNWRAP_FAILED"
  | "ENVELOPE_PROVIDER_CONTRACT"
  | "ENVELOPE_KMS_THROTTLED"
  | "ENVELOPE_KMS_UNAVAILABLE"
  | "ENVELOPE_KMS_TIMEOUT"
  | "ENVELOPE_KMS_ACCESS_DENIED"
  | "ENVELOPE_KMS_CONTEXT_MISMATCH"
  | "ENVELOPE_KEY_DISABLED"
  | "ENVELOPE_KEY_NOT_FOUND"
  | "ENVELOPE_KMS_ERROR";

/** Longest error message kept; longer ones are cut (they quote stored strings). */
export const MAX_MESSAGE_LENGTH = 4096;
/** Longest string detail kept: a whole key reference (2048 bytes) and then some. */
const MAX_DETAIL_LENGTH = 2100;

function safeDetails(details: ErrorDetails | undefined): ErrorDetails {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [key, value] of Object.entries(details ?? {})) {
    out[key] = typeof value === "string" ? printable(value, MAX_DETAIL_LENGTH) : value;
  }
  return out;
}

/** Non-secret facts attached to an error: provider id, key reference, field, attempts. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

export interface EnvelopeErrorOptions {
  cause?: unknown;
  details?: ErrorDetails;
}

/**
 * Base class of every error Envelope throws.
 *
 * @example
 * try { await envelope.decrypt(value, { context }) }
 * catch (e) { if (EnvelopeError.isInstance(e) && e.code === "ENVELOPE_DECRYPT_FAILED") … }
 */
export class EnvelopeError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: EnvelopeErrorOptions = {}) {
    // Messages and details often quote strings read from a stored value (key references,
    // provider ids), which an attacker with database access chooses: whatever a provider
    // or a caller interpolated, no error can carry a raw newline or terminal escape.
    super(
      printable(message, MAX_MESSAGE_LENGTH),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze(safeDetails(options.details));
    Object.defineProperty(this, MARK, { value: true });
  }

  /** `instanceof` that also works across two copies of this package. */
  static isInstance(value: unknown): value is EnvelopeError {
    return typeof value === "object" && value !== null && MARK in value;
  }

  /** Serializes name, code, message and details; never the cause's internals. */
  toJSON(): { name: string; code: ErrorCode; message: string; details: ErrorDetails } {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** The bytes are not a well-formed envelope (truncated, oversized, unknown version…). */
export class FormatError extends EnvelopeError {}

/** The envelope is well formed but could not be opened with the given keys and context. */
export class DecryptionError extends EnvelopeError {}

/** The configuration, a key file, or an argument is invalid. The message names the fix. */
export class ConfigError extends EnvelopeError {}

/** A key provider (KMS, local key) failed or returned something invalid. */
export class ProviderError extends EnvelopeError {}

/**
 * Throws `new Err(code, message, options)` unless `condition` holds. Keeps checks at the
 * door to one line each.
 */
export function needs(
  condition: unknown,
  Err: new (code: ErrorCode, message: string, options?: EnvelopeErrorOptions) => EnvelopeError,
  code: ErrorCode,
  message: string,
  options?: EnvelopeErrorOptions,
): asserts condition {
  if (!condition) throw new Err(code, message, options);
}
