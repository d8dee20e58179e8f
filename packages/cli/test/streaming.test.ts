import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  decodeEnvelope,
  decryptStream,
  Envelope,
  EnvelopeError,
  encryptStream,
  inspectStream,
  isStream,
  localAesProvider,
  parseStreamHeader,
  rewrapStream,
} from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pieces, run } from "../../../test/support/streams.js";

// The streaming vectors (docs/STREAMING.md) run in the one vector runner:
// packages/core/test/vectors.test.ts (family packages/core/test/vectors/stream/).

describe("encryptStream / decryptStream", () => {
  const a = localAesProvider({ keys: randomBytes(32) });
  const b = localAesProvider({ keys: randomBytes(32) });
  const envelope = new Envelope({ encrypt: a, decrypt: [b] });
  const ctx = { file: "backup.sql" };

  it("round-trips any bytes and chunk size, fed in any pieces", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 9000 }),
        fc.integer({ min: 1024, max: 4096 }),
        fc.integer(),
        async (data, chunkSize, seed) => {
          const plain = Buffer.from(data);
          const sealed = await run(
            encryptStream(envelope, { context: ctx, chunkSize }),
            pieces(plain, seed),
          );
          expect(isStream(sealed)).toBe(true);
          const opened = await run(
            decryptStream(envelope, { context: ctx }),
            pieces(sealed, seed + 1),
          );
          expect(opened.equals(plain)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("any single bit flip is a typed error", async () => {
    // With the unwrap cache on (warm after the first run): an altered commitment in the
    // header must be caught on the cached path too.
    const sealed = await run(
      encryptStream(envelope, { context: ctx, chunkSize: 1024 }),
      randomBytes(3000),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: sealed.length * 8 - 1 }), async (bit) => {
        const copy = Buffer.from(sealed);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        const error = await run(decryptStream(envelope, { context: ctx }), copy).then(
          () => undefined,
          (e) => e,
        );
        expect(EnvelopeError.isInstance(error)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("every bit of the header is protected (warm unwrap cache included)", async () => {
    const sealed = await run(
      encryptStream(envelope, { context: ctx, chunkSize: 1024 }),
      randomBytes(1500),
    );
    await run(decryptStream(envelope, { context: ctx }), sealed); // warm the cache
    const headerBytes = inspectStream(sealed).headerBytes;
    for (let bit = 0; bit < headerBytes * 8; bit++) {
      const copy = Buffer.from(sealed);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      const error = await run(decryptStream(envelope, { context: ctx }), copy).then(
        () => undefined,
        (e) => e,
      );
      expect(EnvelopeError.isInstance(error), `bit ${bit}`).toBe(true);
    }
  });

  it("any truncation is a typed error", async () => {
    const sealed = await run(
      encryptStream(envelope, { context: ctx, chunkSize: 1024 }),
      randomBytes(2500),
    );
    for (let cut = 0; cut < sealed.length; cut += 37) {
      await expect(
        run(decryptStream(envelope, { context: ctx }), sealed.subarray(0, cut)),
      ).rejects.toMatchObject({
        code: "ENVELOPE_BAD_FORMAT",
      });
    }
  });

  it("encrypts 256 MiB in bounded memory", async () => {
    // Garbage collection timing makes small thresholds flaky; holding the stream would
    // need ≥ 256 MiB, so anything well under that proves the pipeline streams.
    const total = 256 * 1024 * 1024;
    const piece = randomBytes(1024 * 1024);
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < total / piece.length; i++) yield piece;
      })(),
    );
    const plainHash = createHash("sha256");
    for (let i = 0; i < total / piece.length; i++) plainHash.update(piece);
    const outHash = createHash("sha256");
    let peak = 0;
    const sink = new Writable({
      write(chunk, _e, cb) {
        outHash.update(chunk);
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        cb();
      },
    });
    const before = process.memoryUsage().arrayBuffers;
    // Encrypt then decrypt in one pipeline: the plaintext never exists in memory at once.
    await pipeline(
      source,
      encryptStream(envelope, { context: ctx }),
      decryptStream(envelope, { context: ctx }),
      sink,
    );
    expect(outHash.digest("hex")).toBe(plainHash.digest("hex"));
    expect(peak - before).toBeLessThan(128 * 1024 * 1024);
  });

  it("rewrapStream changes only the header; chunks stay byte-for-byte", async () => {
    const plain = randomBytes(5000);
    const sealed = await run(encryptStream(envelope, { context: ctx, chunkSize: 1024 }), plain);
    const before = inspectStream(sealed);
    expect(before.key.entries.map((e) => e.keyRef)).toEqual([a.keyRef]);
    const moved = await run(rewrapStream(envelope, { to: b, context: ctx }), pieces(sealed, 3));
    const after = inspectStream(moved);
    expect(after.key.entries.map((e) => e.keyRef)).toEqual([b.keyRef]);
    expect(moved.subarray(after.headerBytes).equals(sealed.subarray(before.headerBytes))).toBe(
      true,
    );
    const onlyB = new Envelope({ encrypt: b });
    expect((await run(decryptStream(onlyB, { context: ctx }), moved)).equals(plain)).toBe(true);
    await expect(
      run(decryptStream(new Envelope({ encrypt: a }), { context: ctx }), moved),
    ).rejects.toMatchObject({
      code: "ENVELOPE_NO_MATCHING_KEY",
    });
  });

  it("inspectStream shows ids and sizes, never key material", () => {
    return run(encryptStream(envelope, { context: ctx }), Buffer.from("hi")).then((sealed) => {
      const info = inspectStream(sealed);
      expect(info).toMatchObject({ form: "stream", version: 1, suite: 1, chunkSize: 65536 });
      const inner = decodeEnvelope(parseStreamHeader(sealed)!.keyEnvelope);
      const json = JSON.stringify(info);
      expect(json).toContain(a.keyRef);
      expect(json).not.toContain(
        Buffer.from(inner.entries[0]!.wrapped).toString("hex").slice(0, 16),
      );
      expect(json).not.toContain(Buffer.from(inner.commitment).toString("hex").slice(0, 16));
    });
  });

  it("refuses a single-shot envelope and vice versa", async () => {
    const single = await envelope.encrypt("x", { context: ctx, output: "binary" });
    await expect(run(decryptStream(envelope, { context: ctx }), single)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_FORMAT",
    });
    const stream = await run(encryptStream(envelope, { context: ctx }), Buffer.from("x"));
    await expect(envelope.decrypt(stream, { context: ctx })).rejects.toMatchObject({
      code: "ENVELOPE_UNSUPPORTED_VERSION",
    });
  });
});
