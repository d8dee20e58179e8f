import { randomBytes } from "node:crypto";
import {
  ConfigError,
  DATA_KEY_LENGTH,
  decodeEnvelope,
  type EncryptionContext,
  type Envelope,
  EnvelopeError,
  type KeyProvider,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";

/** A record's data key and its wrapped copies. The holder zeroes `dataKey`. */
export interface RecordMaterials {
  readonly dataKey: Buffer;
  readonly entries: readonly WrappedKey[];
}

const CAPTURE_ID = "records-capture";
const PLACEHOLDER = Buffer.of(0);

/**
 * Where record data keys come from. Core's `Envelope` seals one value per data key and
 * does not hand data keys out, so:
 *
 * - with `keys` (the envelope's encrypting providers): a fresh data key is one provider
 *   call, `generateDataKey` or random bytes + `wrap` (plus one `wrap` per extra key);
 * - without: `envelope.encrypt` of an empty value (1 KMS call), then the data key is
 *   taken out through `envelope.rewrap` to an in-process target (1 unwrap);
 * - an existing record's data key always comes through `envelope.rewrap` to that
 *   in-process target, so every decrypt key the envelope is configured with works, and
 *   core checks the key commitment and emits its unwrap audit event.
 *
 * A core method such as `envelope.generateDataKey(context)` / `envelope.unwrapDataKey(sealed,
 * context)` would make the second and third paths one call and drop the capture target.
 */
export class KeySource {
  readonly #envelope: Envelope;
  readonly #keys: readonly KeyProvider[] | undefined;

  constructor(envelope: Envelope, keys: KeyProvider | readonly KeyProvider[] | undefined) {
    this.#envelope = envelope;
    this.#keys =
      keys === undefined ? undefined : Array.isArray(keys) ? [...keys] : [keys as KeyProvider];
    if (this.#keys) this.#checkKeys();
  }

  /** A fresh data key for one record, wrapped under the envelope's encrypting keys. */
  async fresh(context: EncryptionContext): Promise<RecordMaterials> {
    if (!this.#keys) {
      const seed = await this.#envelope.encrypt(new Uint8Array(0), { context });
      const entries = decodeEnvelope(seed).entries;
      return { dataKey: await this.existing(seed, context), entries };
    }
    this.#checkKeys();
    const [primary, ...others] = this.#keys as [KeyProvider, ...KeyProvider[]];
    let dataKey: Buffer;
    let first: WrappedKey;
    if (primary.generateDataKey) {
      const generated = await call(primary, () => primary.generateDataKey!({ context }));
      checkDataKey(generated?.dataKey, primary);
      dataKey = Buffer.from(generated.dataKey);
      generated.dataKey.fill(0);
      first = generated.entry;
    } else {
      dataKey = randomBytes(DATA_KEY_LENGTH);
      first = await call(primary, () => primary.wrap(dataKey, { context })).catch((e) => {
        dataKey.fill(0);
        throw e;
      });
    }
    try {
      const rest = await Promise.all(
        others.map((p) => call(p, () => p.wrap(dataKey, { context }))),
      );
      const entries = [first, ...rest];
      for (const [i, entry] of entries.entries()) checkEntryOf(entry, this.#keys[i]!);
      return { dataKey, entries };
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
  }

  /**
   * The data key of a sealed value, unwrapped by the envelope (its decrypt keys, its
   * audit hook, its commitment check). The caller zeroes it.
   */
  async existing(sealed: string | Uint8Array, context: EncryptionContext): Promise<Buffer> {
    let captured: Buffer | undefined;
    const target: KeyProvider = {
      id: CAPTURE_ID,
      keyRef: "record-data-key",
      handles: () => false,
      wrap: async (dataKey) => {
        captured?.fill(0);
        captured = Buffer.from(dataKey);
        return { providerId: CAPTURE_ID, keyRef: "record-data-key", wrapped: PLACEHOLDER };
      },
      unwrap: async () => {
        throw new ConfigError("ENVELOPE_BAD_INPUT", "records-capture never unwraps (bug).");
      },
    };
    await this.#envelope.rewrap(sealed, { to: target, context, force: true });
    if (!captured || captured.length !== DATA_KEY_LENGTH) {
      captured?.fill(0);
      throw new ProviderError(
        "ENVELOPE_PROVIDER_CONTRACT",
        "The envelope did not produce the record's data key. This is a bug in @envelope/records.",
      );
    }
    return captured;
  }

  /** The configured `keys` must be the envelope's encrypting keys, in order. */
  #checkKeys(): void {
    const keys = this.#keys!;
    const mine = keys.map((p) => `${p?.id}:${p?.keyRef}`);
    const theirs = this.#envelope.describe().encrypt;
    if (keys.length === 0 || mine.join("\n") !== theirs.join("\n")) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `keys: give the envelope's encrypting key providers, in order (the envelope encrypts with [${theirs.join(", ")}]; keys has [${mine.join(", ")}]).`,
        { details: { field: "keys" } },
      );
    }
  }
}

async function call<T>(provider: KeyProvider, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (EnvelopeError.isInstance(error)) throw error;
    throw new ProviderError(
      "ENVELOPE_KMS_ERROR",
      `Key provider "${provider.id}" failed with an unexpected error while creating a record data key under key "${provider.keyRef}". See \`cause\`.`,
      { cause: error, details: { provider: provider.id, keyRef: provider.keyRef } },
    );
  }
}

function checkDataKey(dataKey: unknown, provider: KeyProvider): asserts dataKey is Uint8Array {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `Key provider "${provider.id}" returned a data key that is not 32 bytes. This is a bug in the provider; nothing was encrypted with it.`,
      { details: { provider: provider.id, keyRef: provider.keyRef } },
    );
  }
}

function checkEntryOf(entry: WrappedKey, provider: KeyProvider): void {
  if (!entry || entry.providerId !== provider.id) {
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `Key provider "${provider.id}" returned an entry labelled "${String(entry?.providerId).slice(0, 64)}". This is a bug in the provider.`,
      { details: { provider: provider.id } },
    );
  }
}
