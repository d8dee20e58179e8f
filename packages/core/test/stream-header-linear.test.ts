import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  decryptStream,
  Envelope,
  encryptStream,
  inspectStream,
  type KeyProvider,
  rewrapStream,
} from "@envelope/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ByteQueue } from "../src/stream/byte-queue.js";
import { countingProvider } from "./support/counting-provider.js";

/**
 * A provider whose entries are as large as the format allows (2048-byte key reference,
 * 4096-byte wrapped key): its AES-KW output padded with zeros. Sixteen of them plus a
 * large stored context make the largest legal stream header (~160 KiB).
 */
function bulky(i: number): KeyProvider {
  const inner = countingProvider({ keyRef: `${String(i).padStart(2, "0")}${"k".repeat(2046)}` });
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (entry) => inner.handles(entry),
    async wrap(dataKey, request) {
      const entry = await inner.wrap(dataKey, request);
      const wrapped = Buffer.alloc(4096);
      wrapped.set(entry.wrapped);
      return { ...entry, wrapped };
    },
    unwrap: (entry, request) =>
      inner.unwrap({ ...entry, wrapped: entry.wrapped.subarray(0, 40) }, request),
  };
}

const providers = Array.from({ length: 16 }, (_, i) => bulky(i));
const envelope = new Envelope({ encrypt: providers, storeContext: true, cache: false });
// Seven 8 KiB values: a stored context of ~57 KiB.
const context = Object.fromEntries(
  Array.from({ length: 7 }, (_, i) => [`k${i}`, String(i).repeat(8192)]),
);

function inWrites(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < bytes.length; o += size) out.push(bytes.subarray(o, o + size));
  return out;
}

/** Sums the bytes every ByteQueue.peek / take may copy while `work` runs. */
async function bytesPeeked(work: () => Promise<unknown>): Promise<number> {
  let total = 0;
  const original = ByteQueue.prototype.peek;
  const spy = vi.spyOn(ByteQueue.prototype, "peek").mockImplementation(function (
    this: ByteQueue,
    n: number,
  ) {
    total += n;
    return original.call(this, n);
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return total;
}

afterEach(() => vi.restoreAllMocks());

describe("stream header parsing is linear in the header size", () => {
  it("a ~160 KiB header in 32-byte writes is copied a bounded number of times", async () => {
    const plaintext = Buffer.from("the rows");
    const sealed = await buffer(
      Readable.from([plaintext]).pipe(encryptStream(envelope, { context, chunkSize: 1024 })),
    );
    const headerBytes = inspectStream(sealed).headerBytes;
    expect(headerBytes).toBeGreaterThan(150 * 1024);

    const writes = inWrites(sealed, 32);
    let opened: Buffer | undefined;
    const peeked = await bytesPeeked(async () => {
      opened = await buffer(Readable.from(writes).pipe(decryptStream(envelope, { context })));
    });
    expect(opened?.equals(plaintext)).toBe(true);
    // Linear: the 15 fixed bytes per write until the header is complete, the header once,
    // and the chunk. Peeking everything queued on each write (the old behaviour) sums to
    // about headerBytes² / 64 ≈ 400 MB here.
    expect(peeked).toBeLessThan(3 * sealed.length);

    const rewrapped = await bytesPeeked(() =>
      buffer(Readable.from(writes).pipe(rewrapStream(envelope, { context }))),
    );
    expect(rewrapped).toBeLessThan(3 * sealed.length);
  });

  it("ByteQueue: many small pushes, peeks and takes stay correct", () => {
    const queue = new ByteQueue();
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    for (const piece of inWrites(data, 3)) queue.push(piece); // 1667 parts: compaction runs
    expect(queue.length).toBe(5000);
    expect(queue.peek(20).equals(data.subarray(0, 20))).toBe(true);
    let offset = 0;
    for (const n of [1, 6, 7, 8, 100, 2000, 2500]) {
      expect(queue.take(n).equals(data.subarray(offset, offset + n))).toBe(true);
      offset += n;
    }
    expect(queue.length).toBe(5000 - offset);
    expect(queue.drain().equals(data.subarray(offset))).toBe(true);
    expect(queue.length).toBe(0);
    queue.push(Buffer.from([1, 2, 3]));
    expect(queue.take(3).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });
});
