import type { IntermediateKeyRecord, StoredKeyRecord } from "../record.js";

/**
 * Where intermediate-key records live. Records hold only master-wrapped keys, but losing
 * one makes every envelope sealed under it unreadable: back the store up.
 *
 * Implementations: `memoryKeyStore` (tests), `fileKeyStore` (one process), and
 * `postgresKeyStore` (several processes). Write your own against this interface.
 *
 * @example
 * const store: KeyStore = memoryKeyStore();
 * await store.put(record);
 * const again = await store.get(record.id);
 */
export interface KeyStore {
  /** A short label for messages and reports (e.g. `file:/var/lib/app/keys.json`). */
  readonly name: string;
  /** The record with this id, or undefined. */
  get(id: string): Promise<StoredKeyRecord | undefined>;
  /** Inserts a new record with version 1. Rejects if the id exists. */
  put(record: IntermediateKeyRecord): Promise<void>;
  /** Every record (intermediate keys are few: one per rotation period and process). */
  list(): Promise<StoredKeyRecord[]>;
  /**
   * Compare-and-swap: replaces the record `id` only if its version is still
   * `expectedVersion`, and bumps the version. Returns false on a version mismatch.
   */
  update(id: string, expectedVersion: number, record: IntermediateKeyRecord): Promise<boolean>;
}
