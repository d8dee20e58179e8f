import {
  ConfigError,
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  FormatError,
  fromText,
  isTextForm,
  type KeyProvider,
} from "@envelope/core";
import type { Row } from "../adapters/types.js";
import type { AnyLegacyDecoder } from "./legacy.js";

/** A column value in the form the engine works with: `ev1:` text or binary bytes. */
export type Value = string | Buffer;

/** What to do with one stored value. */
export type Verdict = "skip" | "work";

/**
 * The per-value half of a job: `classify` decides without any KMS call (so dry runs
 * and skips are free); `apply` produces the new value; `check` is the preflight proof
 * (full decrypt) run on a sample before anything is written.
 */
export interface ValueTransform {
  readonly kind: "rewrap" | "migrate";
  /** Throws an EnvelopeError for a value the job cannot handle (e.g. not an envelope). */
  classify(value: Value): Verdict;
  /** `row`: the row the value was read from (a legacy decoder may read a version column). */
  apply(
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
  ): Promise<Value>;
  /** Returns the value the job would write (undefined when it would write nothing). */
  check(
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
  ): Promise<Value | undefined>;
  /** `provider:keyRef` of each entry of an envelope value (status counts). */
  keyRefs(value: Value): string[];
}

const label = (p: { id?: string; providerId?: string; keyRef: string }) =>
  `${p.providerId ?? p.id}:${p.keyRef}`;

function parts(value: Value) {
  return decodeEnvelope(typeof value === "string" ? fromText(value) : value);
}

function keyRefsOf(value: Value): string[] {
  return parts(value).entries.map(label);
}

/**
 * Rewrap: re-protect each value's data key under `to`. A value whose entries are exactly
 * the targets is skipped. With `verifyBody` (the engine's default), each value's body is
 * authenticated under its row's context before it is rewrapped, so a corrupted or moved
 * value fails and is left as it was. With `verifyAll`, each new value is decrypted with
 * the target keys alone before it may be written.
 */
export function rewrapTransform(
  envelope: Envelope,
  to: readonly KeyProvider[],
  { verifyAll, verifyBody }: { verifyAll: boolean; verifyBody: boolean },
): ValueTransform {
  const targets = new Set(to.map(label));
  const targetOnly = new Envelope({ encrypt: [...to], cache: false });
  const verify = async (value: Value, context: EncryptionContext) => {
    try {
      (await targetOnly.decrypt(value, { context, as: "bytes" })).fill(0);
    } catch (error) {
      // An encrypt-only target (public key only) cannot prove it by decrypting.
      if (EnvelopeError.isInstance(error) && error.code === "ENVELOPE_ENCRYPT_ONLY") return;
      throw error;
    }
  };
  return {
    kind: "rewrap",
    classify(value) {
      const refs = keyRefsOf(value);
      return refs.length === targets.size && refs.every((r) => targets.has(r)) ? "skip" : "work";
    },
    async apply(value, context) {
      const out = await envelope.rewrap(value, { to: [...to], context, verifyBody });
      if (verifyAll) await verify(out, context);
      return out;
    },
    async check(value, context) {
      (await envelope.decrypt(value, { context, as: "bytes" })).fill(0);
      const out = await envelope.rewrap(value, { to: [...to], context });
      await verify(out, context);
      return out;
    },
    keyRefs: keyRefsOf,
  };
}

/**
 * Migrate: turn a legacy value (plaintext, hand-rolled AES, Fernet, pgcrypto, versioned)
 * into an envelope under the target keys. Values that already are envelopes are skipped; a
 * value the decoder's shape test (`matches`) rejects is `ENVELOPE_LEGACY_UNRECOGNIZED` and
 * is left as is. Every new value is decrypted again and compared with the legacy
 * plaintext before it may be written.
 */
export function migrateTransform(target: Envelope, legacy: AnyLegacyDecoder): ValueTransform {
  const seal = async (
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
  ) => {
    const plaintext = await legacy.decode(value, row);
    try {
      const out =
        form === "text"
          ? await target.encrypt(plaintext, { context, output: "text" })
          : await target.encrypt(plaintext, { context, output: "binary" });
      const back = await target.decrypt(out, { context, as: "bytes" });
      const same = back.equals(plaintext);
      back.fill(0);
      if (!same) {
        throw new ConfigError(
          "ENVELOPE_PROVIDER_CONTRACT",
          "Migration self-check failed: the new envelope did not decrypt to the legacy plaintext. Nothing was written.",
        );
      }
      return out;
    } finally {
      plaintext.fill(0);
    }
  };
  const recognized = (value: Value) => !legacy.matches || legacy.matches(value);
  return {
    kind: "migrate",
    classify(value) {
      if (isEnvelope(value)) return "skip";
      if (!recognized(value)) throw unrecognizedValue(legacy.format);
      return "work";
    },
    apply: seal,
    async check(value, context, form, row) {
      return isEnvelope(value) ? undefined : seal(value, context, form, row);
    },
    keyRefs(value) {
      if (isEnvelope(value)) return keyRefsOf(value);
      const format = recognized(value) ? (legacy.formatOf?.(value) ?? legacy.format) : undefined;
      return format ? [`legacy:${format}`] : [];
    },
  };
}

function unrecognizedValue(format: string): FormatError {
  return new FormatError(
    "ENVELOPE_LEGACY_UNRECOGNIZED",
    `Value is neither an Envelope value nor in the legacy format given (${format}). It was left unchanged: add its format to --from, or allow plaintext only if it really is plaintext.`,
    { details: { field: "legacyValue" } },
  );
}

function isEnvelope(value: Value): boolean {
  if (typeof value === "string" && !isTextForm(value)) return false;
  try {
    parts(value);
    return true;
  } catch {
    return false;
  }
}
