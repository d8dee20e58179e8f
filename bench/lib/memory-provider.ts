import type { KeyProvider, WrappedKey } from "@envelope/core";

/**
 * A provider whose unwrap costs ~0: the "wrapped" key is an index into an in-memory
 * table. Only what core does around the unwrap is left to measure.
 */
export function memoryProvider(): KeyProvider {
  const keys: Buffer[] = [];
  return {
    id: "memory",
    keyRef: "m1",
    handles: (e) => e.providerId === "memory",
    async wrap(dataKey) {
      const wrapped = Buffer.alloc(4);
      wrapped.writeUInt32BE(keys.push(Buffer.from(dataKey)) - 1);
      return { providerId: "memory", keyRef: "m1", wrapped };
    },
    async unwrap(entry: WrappedKey) {
      const key = keys[Buffer.from(entry.wrapped).readUInt32BE(0)];
      if (!key) throw new Error("unknown entry");
      return Buffer.from(key);
    },
  };
}
