import { randomBytes } from "node:crypto";
import {
  EnvelopeError,
  type KeyProvider,
  type KeyRequest,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";
import { printable, secretCopy } from "@envelope/core/internal";
import { corruptRecord, PROVIDER_ID } from "./errors.js";
import {
  type IntermediateKeyRecord,
  keyCheckMatches,
  keyCheckOf,
  recordIntact,
  sealRecord,
} from "./record.js";

const IK_LENGTH = 32;

/**
 * The context every master call about an IK carries. A KMS that binds context (AWS KMS
 * EncryptionContext) then refuses to unwrap a wrapped IK copied into another record.
 */
export function ikRequest(id: string): KeyRequest {
  return { context: { "envelope-intermediate-key": id } };
}

/** A fresh IK id: `ik-` + 96 random bits in hex. */
export function newIkId(): string {
  return `ik-${randomBytes(12).toString("hex")}`;
}

/**
 * Generates an IK and its record (wrapped by `master`, in one call when the master can
 * generate data keys). The caller stores the record before using the key, and zeroes it.
 */
export async function createIntermediateKey(
  master: KeyProvider,
  now: number,
): Promise<{ record: IntermediateKeyRecord; key: Buffer }> {
  const id = newIkId();
  const request = ikRequest(id);
  let key: Buffer;
  let entry: WrappedKey;
  if (master.generateDataKey) {
    const generated = await master.generateDataKey(request);
    key = secretCopy(generated.dataKey);
    generated.dataKey.fill(0);
    entry = generated.entry;
  } else {
    key = randomBytes(IK_LENGTH);
    entry = await master.wrap(key, request).catch((error) => {
      key.fill(0);
      throw error;
    });
  }
  if (
    key.length !== IK_LENGTH ||
    entry?.providerId !== master.id ||
    !(entry.wrapped instanceof Uint8Array)
  ) {
    key.fill(0);
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `hierarchical: master provider "${master.id}" returned an invalid key or entry while creating an intermediate key. This is a bug in that provider.`,
      { details: { provider: PROVIDER_ID, master: master.id } },
    );
  }
  const record = sealRecord({ id, createdAt: now, master: entry, keyCheck: keyCheckOf(key, id) });
  return { record, key };
}

/**
 * Unwraps an IK record with whichever master provider holds its key, after checking the
 * record's checksum, and checks the result against the record's key check. The caller
 * zeroes the returned key.
 */
export async function unwrapIntermediateKey(
  record: IntermediateKeyRecord,
  masters: readonly KeyProvider[],
  storeName: string,
): Promise<Buffer> {
  if (!recordIntact(record)) {
    const id = (record as { id?: unknown } | null)?.id;
    throw corruptRecord(printable(String(id), 64), storeName, "checksum mismatch");
  }
  const master = masters.find((m) => m.id === record.master.providerId && m.handles(record.master));
  if (!master) {
    // Read from the store, which whoever can write to the database controls: escaped, capped.
    const under = printable(`${record.master.providerId}:${record.master.keyRef}`);
    throw new ProviderError(
      "ENVELOPE_KEY_NOT_FOUND",
      `hierarchical: intermediate key ${record.id} is wrapped under master key ${under}, which is not configured. Add that master key to the hierarchical provider's decrypt list (or finish rotateMaster).`,
      { details: { provider: PROVIDER_ID, keyRef: record.id, master: under } },
    );
  }
  let raw: Uint8Array;
  try {
    raw = await master.unwrap(record.master, ikRequest(record.id));
  } catch (error) {
    const code = EnvelopeError.isInstance(error) ? error.code : "ENVELOPE_UNWRAP_FAILED";
    throw new ProviderError(
      code,
      `hierarchical: the master key could not unwrap intermediate key ${record.id}: ${error instanceof Error ? error.message : "unknown error"}`,
      { cause: error, details: { provider: PROVIDER_ID, keyRef: record.id, master: master.id } },
    );
  }
  const key = secretCopy(raw);
  raw.fill(0);
  if (key.length !== IK_LENGTH || !keyCheckMatches(key, record)) {
    key.fill(0);
    throw corruptRecord(
      record.id,
      storeName,
      "the master key unwrapped it to a key that fails the key check",
    );
  }
  return key;
}
