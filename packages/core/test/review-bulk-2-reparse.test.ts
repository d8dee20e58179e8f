/**
 * Review of 2bbd47c..HEAD (decryptMany parses each value twice and does not remember
 * message keys). Read as an attacker with DB write and as a caller following the README.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { parse } from "../src/format/parse.js";
import { Envelope, type EnvelopeError, UnwrapCache } from "../src/index.js";
import { fieldContext, pacedKms, sealRows } from "./support/bulk-rows.js";
import { craft } from "./support/craft.js";

// Records every message key derived, to check each is zeroed after a bulk open.
const derived: Buffer[] = [];
vi.mock("/packages/core/src/crypto/kdf.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/crypto/kdf.js")>();
  return {
    ...actual,
    deriveMessageKeys: (...args: Parameters<typeof actual.deriveMessageKeys>) => {
      const keys = actual.deriveMessageKeys(...args);
      derived.push(keys.encryptionKey);
      return keys;
    },
  };
});

const codeOf = (r: { ok: boolean; error?: unknown }) =>
  r.ok ? "ok" : (r.error as EnvelopeError).code;

describe("review-2: decryptMany after the second parse", () => {
  // Found: replacing an item's `sealed` after decryptMany grouped it (a caller reusing its
  // row objects) made a group's warm member unwrap while the lane's pipelined next unwrap
  // was out: 2 KMS calls in flight at concurrency 1. Fixed: each item is held as grouped.
  it("a caller replacing item.sealed mid-call cannot put two unwraps out on one lane", async () => {
    let items: { sealed: Buffer; context: Record<string, string> }[] = [];
    let swap: (() => void) | undefined;
    const kms = pacedKms({
      delayMs: 3,
      onUnwrap: (n) => {
        if (n === 1) queueMicrotask(() => swap?.()); // after the synchronous grouping
      },
    });
    const writer = new Envelope({ encrypt: kms.provider });
    const rows = await sealRows(writer, 3);
    const reader = new Envelope({ encrypt: kms.provider });
    items = rows.slice(0, 6).map((r) => ({ ...r }));
    // When record 0's unwrap goes out (grouping is done), item 1 becomes record 2's value.
    swap = () => {
      items[1]!.sealed = rows[6]!.sealed;
      items[1]!.context = rows[6]!.context;
    };
    kms.reset();
    await reader.decryptMany(items, { concurrency: 1 });
    expect(kms.stats.maxInFlight).toBeLessThanOrEqual(1);
  });

  // Found (older than the second parse): a planted value whose first entry copied a
  // victim's was grouped with the victim's record and unwrapped its second entry while the
  // lane's pipelined unwrap was out. Fixed: values are grouped by all their entries.
  it("an attacker's planted value cannot put two unwraps out on one lane", async () => {
    const kms = pacedKms({ delayMs: 3 });
    const writer = new Envelope({ encrypt: kms.provider });
    const rows = await sealRows(writer, 2);
    const victim = parse(rows[0]!.sealed).entries[0]!;
    const other = parse(rows[3]!.sealed).entries[0]!;
    const planted = craft({
      entries: [
        { providerId: victim.providerId, keyRef: victim.keyRef, wrapped: victim.wrapped },
        { providerId: other.providerId, keyRef: other.keyRef, wrapped: randomBytes(40) },
      ],
    });
    const reader = new Envelope({ encrypt: kms.provider });
    kms.reset();
    const results = await reader.decryptMany(
      [
        ...rows.slice(0, 3),
        { sealed: planted, context: fieldContext(9, "email") },
        ...rows.slice(3),
      ],
      { concurrency: 1 },
    );
    expect(results.map(codeOf).filter((c) => c === "ok")).toHaveLength(6);
    expect(kms.stats.maxInFlight).toBeLessThanOrEqual(1);
  });

  // Held: no message key remembered and every derived key zeroed on the bulk warm path
  // (success, GCM failure, commitment mismatch); per-item errors stay per item.
  it("bulk warm path zeroes the message key on success, GCM failure and commitment mismatch", async () => {
    const remember = vi.spyOn(UnwrapCache.prototype, "rememberMessageKey");
    try {
      const kms = pacedKms({ delayMs: 1 });
      const writer = new Envelope({ encrypt: kms.provider });
      const rows = await sealRows(writer, 2);
      const reader = new Envelope({ encrypt: kms.provider });
      const tampered = Buffer.from(rows[1]!.sealed);
      tampered[tampered.length - 1]! ^= 1; // GCM failure on the warm path
      const wrongContext = { sealed: rows[2]!.sealed, context: fieldContext(7, "ssn") };
      const v = parse(rows[0]!.sealed);
      const mismatch = craft({
        entries: [
          {
            providerId: v.entries[0]!.providerId,
            keyRef: v.entries[0]!.keyRef,
            wrapped: v.entries[0]!.wrapped,
          },
        ],
      });
      derived.length = 0;
      const results = await reader.decryptMany(
        [
          rows[0]!,
          { sealed: tampered, context: rows[1]!.context },
          wrongContext,
          { sealed: mismatch, context: fieldContext(0, "x") },
          ...rows.slice(3),
        ],
        { concurrency: 1 },
      );
      expect(results.map(codeOf)).toEqual([
        "ok",
        "ENVELOPE_DECRYPT_FAILED",
        "ENVELOPE_DECRYPT_FAILED",
        "ENVELOPE_COMMITMENT_MISMATCH",
        "ok",
        "ok",
        "ok",
      ]);
      expect(remember).not.toHaveBeenCalled();
      // hkdfHmacs / native both return fresh buffers; every message key must be zero now.
      expect(derived.length).toBeGreaterThan(0);
      for (const k of derived) expect(k.every((b) => b === 0)).toBe(true);
    } finally {
      remember.mockRestore();
    }
  });
});
