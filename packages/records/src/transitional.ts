import {
  ConfigError,
  DecryptionError,
  type EncryptionContext,
  type Envelope,
  EnvelopeError,
  FormatError,
  isTextForm,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
} from "@envelope/core";
import { shown, withDetails } from "./names.js";

/**
 * Reads one legacy column value (hand-rolled AES, Fernet, …) into its plaintext bytes.
 * Typed structurally: `legacyDecoder(…)` of `@envelope/batch-rewrap` and the decoders of
 * `@envelope/legacy` fit as they are.
 *
 * `decode` throws an `EnvelopeError`: `ENVELOPE_BAD_FORMAT` when the value is not in its
 * format at all (the next decoder is tried), anything else (wrong key, altered value) when
 * it is. `matches`, when given, claims a value cheaply: a claimed value that does not
 * decode is always an error, never handed to the next decoder or read as plaintext.
 */
export interface LegacyValueDecoder {
  readonly format: string;
  decode(value: string | Buffer): Buffer;
  matches?(value: string | Buffer): boolean;
}

/** One legacy read, for the audit log: where and which format — never the value. */
export interface LegacyReadEvent {
  /** The decoder's `format`, or `"plaintext"`. */
  readonly format: string;
  /** From the value's encryption context (`table`, `column`, `id`), when it has them. */
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly id: string | undefined;
}

export interface TransitionalReadOptions {
  /** Legacy formats accepted, tried in order. */
  decoders?: readonly LegacyValueDecoder[];
  /**
   * Accept a value that is neither an envelope nor claimed by a decoder as plaintext.
   * Default false. Only for columns that really hold never-encrypted rows: every decoder
   * is tried first, and a value a decoder recognised but could not decrypt stays an error.
   */
  allowPlaintext?: boolean;
  /**
   * Called once per legacy read (required: legacy reads must be visible). Called
   * synchronously; an error it throws is ignored, like core's `onAudit`, and the read is
   * still counted in `counts()`.
   */
  onLegacyRead: (event: LegacyReadEvent) => void;
  /**
   * How `@envelope/records` returns a legacy value: `"string"` (default; strict UTF-8, a
   * value that is not is an `ENVELOPE_BAD_FORMAT` error) or `"bytes"` (a Buffer).
   */
  legacyAs?: "string" | "bytes";
}

/** What `open` found: the plaintext bytes, and the legacy format when it was not an envelope. */
export interface TransitionalOpened {
  plaintext: Buffer;
  /** Undefined for an envelope; the decoder's format or `"plaintext"` for a legacy value. */
  legacyFormat: string | undefined;
}

/** The configured transitional read: pass it as `transitional` to `createRecordCipher`. */
export interface TransitionalRead {
  readonly formats: readonly string[];
  readonly allowPlaintext: boolean;
  readonly legacyAs: "string" | "bytes";
  /**
   * Opens a stored value: an envelope with `envelope.decrypt` (its errors are final, it is
   * never tried as legacy), otherwise with the first configured decoder that accepts it,
   * otherwise as plaintext when allowed, otherwise `ENVELOPE_BAD_FORMAT`.
   */
  open(
    envelope: Envelope,
    value: string | Uint8Array,
    context: EncryptionContext,
  ): Promise<TransitionalOpened>;
  /** Legacy reads so far, by format (`{ "aes-256-gcm-json": 12, plaintext: 3 }`). */
  counts(): Readonly<Record<string, number>>;
}

/**
 * True when a stored value is meant to be an envelope: `ev1:` text, or bytes starting with
 * the format version 0x01 and a known suite (0x01, 0x02, 0x03). Such a value is always
 * opened as an envelope — a damaged one is an error, never re-read as a legacy value or
 * plaintext.
 */
export function isSealedValue(value: string | Uint8Array): boolean {
  if (typeof value === "string") return isTextForm(value);
  return value.length >= 2 && value[0] === 0x01 && SEALED_SUITES.has(value[1]!);
}

/** Every suite FORMAT.md defines; a new suite must be added here before writers emit it. */
const SEALED_SUITES: ReadonlySet<number> = new Set([
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_SIGNED_ED25519,
  SUITE_AES256GCM_SHA512_COMMIT,
]);

/**
 * An explicit, audited read path for a column that still holds legacy values during a
 * migration (the app switches to Envelope first, `envelope migrate` converts the rest).
 * Writes are not affected: they always produce envelopes.
 *
 * @example
 * const legacyReads = transitionalRead({
 *   decoders: [legacyDecoder({ format: "aes-256-gcm-json", key: { env: "LEGACY_KEY" } })],
 *   onLegacyRead: (e) => logger.warn({ event: "legacy read", ...e }),
 * });
 * const users = createRecordCipher(envelope, schema, { transitional: legacyReads });
 */
export function transitionalRead(options: TransitionalReadOptions): TransitionalRead {
  const { decoders, allowPlaintext, onLegacyRead, legacyAs } = checkOptions(options);
  const counts: Record<string, number> = Object.create(null);

  const record = (format: string, context: EncryptionContext) => {
    counts[format] = (counts[format] ?? 0) + 1;
    try {
      onLegacyRead(
        Object.freeze({ format, table: context.table, column: context.column, id: context.id }),
      );
    } catch {
      // An audit sink failure must not change what a read returns (as core's onAudit).
    }
  };

  return Object.freeze({
    formats: Object.freeze(decoders.map((d) => d.format)),
    allowPlaintext,
    legacyAs,
    async open(envelope: Envelope, value: string | Uint8Array, context: EncryptionContext) {
      if (isSealedValue(value)) {
        const plaintext = await envelope.decrypt(value, { context, as: "bytes" });
        return { plaintext, legacyFormat: undefined };
      }
      const stored = typeof value === "string" ? value : Buffer.from(value);
      for (const decoder of decoders) {
        const plaintext = tryDecoder(decoder, stored, context);
        if (plaintext) {
          record(decoder.format, context);
          return { plaintext, legacyFormat: decoder.format };
        }
      }
      if (!allowPlaintext) throw unrecognised(context, decoders);
      record("plaintext", context);
      const plaintext = typeof stored === "string" ? Buffer.from(stored, "utf8") : stored;
      return { plaintext, legacyFormat: "plaintext" };
    },
    counts: () => Object.freeze({ ...counts }),
  });
}

/** The decoder's plaintext, or undefined when the value is not in its format at all. */
function tryDecoder(
  decoder: LegacyValueDecoder,
  value: string | Buffer,
  context: EncryptionContext,
): Buffer | undefined {
  let claimed: boolean | undefined;
  try {
    claimed = decoder.matches ? decoder.matches(value) === true : undefined;
    if (claimed === false) return undefined;
    return decoder.decode(value);
  } catch (error) {
    const notThisFormat = EnvelopeError.isInstance(error) && error.code === "ENVELOPE_BAD_FORMAT";
    if (notThisFormat && claimed === undefined) return undefined;
    // The decoder's own typed error (wrong legacy key, altered value): kept, with the
    // format and the place in its details, as docs/ERRORS.md says.
    if (EnvelopeError.isInstance(error)) {
      throw withDetails(error, { format: shown(decoder.format), ...place(context) });
    }
    // A third-party decoder's own error: we cannot tell "not mine" from "wrong key".
    throw new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      `The legacy ${shown(decoder.format)} decoder failed on a value of ${where(context)} (wrong legacy key, altered value, or a decoder bug; see cause).`,
      { cause: error, details: { format: shown(decoder.format), ...place(context) } },
    );
  }
}

function unrecognised(
  context: EncryptionContext,
  decoders: readonly LegacyValueDecoder[],
): FormatError {
  const formats = decoders.map((d) => shown(d.format)).join(", ") || "none";
  return new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `A value of ${where(context)} is neither an Envelope value nor in a configured legacy format (decoders: ${formats}; plaintext not allowed). Add its decoder to transitional.decoders, or allowPlaintext if the column holds never-encrypted rows; otherwise the value was altered.`,
    { details: { field: "transitional", ...place(context) } },
  );
}

const where = (c: EncryptionContext) =>
  c.table && c.column ? `${shown(c.table)}.${shown(c.column)}` : "the column";

const place = (c: EncryptionContext) => ({
  ...(c.table ? { table: shown(c.table) } : {}),
  ...(c.column ? { column: shown(c.column) } : {}),
  ...(c.id ? { id: shown(c.id) } : {}),
});

function checkOptions(options: TransitionalReadOptions) {
  const bad = (field: string, problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `transitionalRead: ${field} ${problem}.`, {
      details: { field: `transitional.${field}` },
    });
  if (!options || typeof options !== "object") {
    throw bad("options", "must be an object: { decoders, allowPlaintext?, onLegacyRead }");
  }
  const decoders = options.decoders ?? [];
  if (!Array.isArray(decoders)) throw bad("decoders", "must be an array of legacy decoders");
  const seen = new Set<string>();
  for (const d of decoders) {
    if (!d || typeof d.format !== "string" || d.format.length === 0) {
      throw bad("decoders", "holds an entry without a format name");
    }
    if (typeof d.decode !== "function")
      throw bad("decoders", `"${shown(d.format)}" has no decode()`);
    if (d.matches !== undefined && typeof d.matches !== "function") {
      throw bad("decoders", `"${shown(d.format)}" has a matches that is not a function`);
    }
    // A plaintext decoder would accept anything, including damaged legacy ciphertext.
    if (d.format === "plaintext") {
      throw bad(
        "decoders",
        "holds a plaintext decoder; set allowPlaintext: true instead (tried last)",
      );
    }
    if (seen.has(d.format)) throw bad("decoders", `lists "${shown(d.format)}" twice`);
    seen.add(d.format);
  }
  const allowPlaintext = options.allowPlaintext ?? false;
  if (typeof allowPlaintext !== "boolean") throw bad("allowPlaintext", "must be true or false");
  if (decoders.length === 0 && !allowPlaintext) {
    throw bad("decoders", "is empty and plaintext is not allowed: nothing legacy would be read");
  }
  if (typeof options.onLegacyRead !== "function") {
    throw bad("onLegacyRead", "must be a function: every legacy read is audited");
  }
  const legacyAs = options.legacyAs ?? "string";
  if (legacyAs !== "string" && legacyAs !== "bytes")
    throw bad("legacyAs", 'must be "string" or "bytes"');
  return { decoders: [...decoders], allowPlaintext, onLegacyRead: options.onLegacyRead, legacyAs };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A legacy plaintext as `@envelope/records` returns it (see `legacyAs`). Zeroes the bytes when it makes a string. */
export function legacyFieldValue(
  plaintext: Buffer,
  legacyAs: "string" | "bytes",
  field: string,
): string | Buffer {
  if (legacyAs === "bytes") return plaintext;
  try {
    return strictUtf8.decode(plaintext);
  } catch (cause) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      `A legacy value of field "${shown(field)}" is not UTF-8 text; read it with transitionalRead({ legacyAs: "bytes" }) if the column holds bytes.`,
      { cause, details: { field: shown(field) } },
    );
  } finally {
    plaintext.fill(0);
  }
}
