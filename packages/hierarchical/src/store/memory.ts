import { ConfigError } from "@envelope/core";
import { copyRecord, type IntermediateKeyRecord, type StoredKeyRecord } from "../record.js";
import type { KeyStore } from "./types.js";

/**
 * A key store in process memory: for tests and benchmarks. Everything is lost when the
 * process exits, and with it every envelope sealed under its keys.
 *
 * @example
 * const store = memoryKeyStore();
 */
export function memoryKeyStore(name = "memory"): KeyStore {
  const records = new Map<string, StoredKeyRecord>();
  return {
    name,
    async get(id) {
      const found = records.get(id);
      return found && copyRecord(found);
    },
    async put(record) {
      if (records.has(record.id)) throw duplicate(record.id);
      records.set(record.id, copyRecord({ ...record, version: 1 }));
    },
    async list() {
      return [...records.values()].map(copyRecord);
    },
    async update(id, expectedVersion, record: IntermediateKeyRecord) {
      const found = records.get(id);
      if (!found || found.version !== expectedVersion || record.id !== id) return false;
      records.set(id, copyRecord({ ...record, version: expectedVersion + 1 }));
      return true;
    },
  };
}

export function duplicate(id: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `hierarchical: intermediate key ${id} already exists in the key store.`,
  );
}
