import { decodeContext, encodeContext } from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

// The reference: sort by UTF-8 bytes, length-prefix everything (docs/FORMAT.md).
function reference(context: Record<string, string>): Buffer {
  const pairs = Object.entries(context)
    .map(([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")] as const)
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [Buffer.from([pairs.length >> 8, pairs.length & 0xff])];
  for (const [k, v] of pairs) {
    parts.push(Buffer.from([k.length >> 8, k.length & 0xff]), k);
    parts.push(Buffer.from([v.length >> 8, v.length & 0xff]), v);
  }
  return Buffer.concat(parts);
}

describe("context encoding: ASCII fast path and UTF-8 path agree with the spec", () => {
  it("ASCII contexts (fast path), including control characters", () => {
    const ascii = fc.string({
      unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(
        fc.dictionary(
          ascii.filter((k) => k.length > 0),
          ascii,
          // Past 16 keys the fast path sorts with Array.prototype.sort, below by insertion.
          { maxKeys: 24 },
        ),
        (ctx) => {
          expect(encodeContext(ctx).equals(reference(ctx))).toBe(true);
          expect(decodeContext(encodeContext(ctx))).toEqual({ ...ctx });
        },
      ),
    );
  });

  it("mixed ASCII and non-ASCII contexts sort by UTF-8 bytes, not UTF-16 units", () => {
    const ctx = { "\uff61": "a", "\u{1f600}": "b", z: "é", a: "plain" };
    expect(encodeContext(ctx).equals(reference(ctx))).toBe(true);
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ unit: "grapheme", minLength: 1 }),
          fc.string({ unit: "grapheme" }),
          { maxKeys: 6 },
        ),
        (c) => {
          expect(encodeContext(c).equals(reference(c))).toBe(true);
        },
      ),
    );
  });
});
