import type { DataKeyMaterials, EncryptionContext, Envelope } from "@envelope/core";
import { ownDataKeys } from "./own-data-keys.js";

type Materials = DataKeyMaterials;
type Row = Record<string, unknown>;

/**
 * The data keys of one table's records: a fresh key per record (remembered as generated
 * here), the rule for reusing a stored record's key in `update`, and whether a row is
 * wrapped under exactly the current encrypting keys.
 */
export function recordKeys(
  envelope: Envelope,
  table: string,
  encrypted: readonly string[],
  sealedOf: (value: unknown, field: string) => string | Uint8Array,
  context: (field: string, id: string) => EncryptionContext,
) {
  const own = ownDataKeys(envelope);

  /** True when every sealed field of the row is wrapped under exactly the current encrypting keys. */
  const underCurrentKeys = (row: Row): boolean => {
    const current = JSON.stringify([...envelope.describe().encrypt].sort());
    return encrypted.every((f) => {
      const value = row[f];
      if (value === null || value === undefined) return true;
      const refs = envelope
        .inspect(sealedOf(value, f))
        .entries.map((e) => `${e.provider}:${e.keyRef}`);
      return JSON.stringify(refs.sort()) === current;
    });
  };

  /** A fresh data key for the record, remembered as generated here (see {@link OwnDataKeys}). */
  const fresh = async (id: string): Promise<Materials> => {
    // The KMS request carries the record's context; each field's AAD adds its column.
    const m = await envelope.generateDataKey({ context: { table, id } });
    own.add(table, id, m.dataKey);
    return m;
  };

  /**
   * The data key of the row's first sealed field, when `update` may seal new data under it;
   * undefined when it may not (then the whole record moves to a fresh key).
   *
   * A stored value can have been made by anyone holding an encrypt-only key (a local-rsa
   * public key, kms:Encrypt): `unwrapDataKey` checks only that the data key matches the
   * value's commitment, and a planted field under a data key the attacker chose passes that
   * check (and, without writer signatures, opens too). So the key is reused only when
   *  1. that very field opens under this row's context (tag and context verified), which
   *     also stops a field copied from another row; and
   *  2. the data key was generated in this process, by a record cipher on this Envelope,
   *     for this table and id — so nobody else chose it.
   * A field that does not open throws (typed, nothing to write).
   */
  const reusable = async (row: Row, f: string, id: string): Promise<Materials | undefined> => {
    const stored = sealedOf(row[f], f);
    // One immutable copy: the value opened is the value whose key is taken.
    const sealed = typeof stored === "string" ? stored : Buffer.from(stored);
    const opened = await envelope.decrypt(sealed, { context: context(f, id) });
    opened.fill(0);
    const m = await envelope.unwrapDataKey(sealed, { context: context(f, id) });
    if (own.has(table, id, m.dataKey)) return m;
    m.dataKey.fill(0);
    return undefined;
  };

  return { fresh, reusable, underCurrentKeys };
}
