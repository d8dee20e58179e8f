import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parse } from "../src/format/parse.js";
import { entryBytes } from "../src/format/v1/entry-bytes.js";
import { Envelope, generateSigningKeyPair, localAesProvider } from "../src/index.js";
import { craft } from "./support/craft.js";

// decryptMany groups values by these bytes: they must be exactly the entries (count
// included), found without throwing whatever the input.

/** The entries' bytes as the decoder sees them: count, then each length-prefixed field. */
function fromParts(sealed: Buffer): Buffer {
  const { entries } = parse(sealed);
  const fields = entries.flatMap((e) => {
    const id = Buffer.from(e.providerId, "latin1");
    const ref = Buffer.from(e.keyRef, "utf8");
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    return [Buffer.from([id.length]), id, u16(ref.length), ref, u16(e.wrapped.length), e.wrapped];
  });
  return Buffer.concat([Buffer.from([entries.length]), ...fields]);
}

describe("entryBytes", () => {
  const keys = [randomBytes(32), randomBytes(32)];
  const aes = localAesProvider({ keys: keys[0]! });
  const other = localAesProvider({ keys: keys[1]! });

  it("is the entries of suites 0x01, 0x02 (signed) and 0x03 values, with one or two entries", async () => {
    const writers = [
      new Envelope({ encrypt: aes }),
      new Envelope({ encrypt: aes, suite: 3 }),
      new Envelope({ encrypt: [aes, other] }),
      new Envelope({ encrypt: aes, signing: { key: generateSigningKeyPair().privateKeyPem } }),
    ];
    const suites = new Set<number>();
    for (const writer of writers) {
      const sealed = (await writer.encrypt("555-0150", {
        context: { id: "1" },
        output: "binary",
      })) as Buffer;
      suites.add(sealed[1]!);
      expect(Buffer.from(entryBytes(sealed)!)).toEqual(fromParts(sealed));
    }
    expect([...suites].sort()).toEqual([1, 2, 3]);
  });

  it("is the same for a record's fields and differs between records and extra entries", async () => {
    const writer = new Envelope({ encrypt: aes });
    const row = await writer.generateDataKey();
    const next = await writer.generateDataKey();
    const seal = (m: typeof row, v: string) =>
      writer.encryptWithDataKey(m, v, { context: { id: v } });
    const [a, b, c] = [seal(row, "a"), seal(row, "b"), seal(next, "c")];
    expect(Buffer.from(entryBytes(a)!)).toEqual(Buffer.from(entryBytes(b)!));
    expect(Buffer.from(entryBytes(a)!)).not.toEqual(Buffer.from(entryBytes(c)!));
    // A planted value carrying a's entry and one more is not in a's group.
    const first = parse(a).entries[0]!;
    const planted = craft({ entries: [first, { providerId: "local-aes", keyRef: "x" }] });
    expect(Buffer.from(entryBytes(planted)!)).not.toEqual(Buffer.from(entryBytes(a)!));
  });

  it("is undefined, never a throw or a read past the end, for cut or foreign bytes", () => {
    const whole = craft({ entries: [{}, { keyRef: "second" }] });
    for (let cut = 0; cut < whole.length; cut++) {
      const found = entryBytes(whole.subarray(0, cut));
      // Cut inside the entries: undefined. Cut after them: still the whole entries.
      if (found) expect(Buffer.from(found)).toEqual(Buffer.from(entryBytes(whole)!));
    }
    expect(entryBytes(craft({ version: 2 }))).toBeUndefined();
    expect(entryBytes(craft({ suite: 4 }))).toBeUndefined();
    // Each length within §2.1's limits, as the decoder requires: a planted value cannot
    // make a group key of megabytes.
    expect(entryBytes(craft({ entries: [{ providerId: "a".repeat(65) }] }))).toBeUndefined();
    expect(entryBytes(craft({ entries: [{ keyRefLength: 0, keyRef: "" }] }))).toBeUndefined();
    expect(entryBytes(craft({ entries: [{ keyRef: "k".repeat(2049) }] }))).toBeUndefined();
    expect(entryBytes(craft({ entries: [{ wrapped: new Uint8Array(4097) }] }))).toBeUndefined();
    expect(entryBytes(craft({ entries: [{ wrapped: new Uint8Array(4096) }] }))).toBeDefined();
    expect(entryBytes(craft({ entryCount: 0, entries: [] }))).toBeUndefined();
    expect(entryBytes(craft({ entryCount: 17 }))).toBeUndefined();
    expect(entryBytes(craft({ entries: [{ wrappedLength: 60_000 }] }))).toBeUndefined();
    expect(entryBytes(new Uint8Array(0))).toBeUndefined();
  });
});
