import { randomBytes } from "node:crypto";
import {
  type AuditEvent,
  DecryptionError,
  decodeContext,
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  encodeContext,
  FormatError,
  fromText,
  localAesProvider,
  ProviderError,
  toText,
} from "@envelope/core";
import fc from "fast-check";
import { describe, expect, expectTypeOf, it } from "vitest";
import { expectEnvelopeError, outcome, rejection, thrown } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

// Full Unicode code points (no lone surrogates: those cannot be encoded as UTF-8 and are
// rejected up front, which a separate test checks).
const unicode = (minLength: number, maxLength: number) =>
  fc.string({ unit: "binary", minLength, maxLength });
const contextArb: fc.Arbitrary<EncryptionContext> = fc.oneof(
  fc.constant({}),
  fc.dictionary(unicode(1, 16), unicode(0, 32), { maxKeys: 6 }),
);
const plaintextArb = fc.uint8Array({ maxLength: 4096 });

const aes = localAesProvider({ keys: randomBytes(32) });
const other = localAesProvider({ keys: randomBytes(32) });

/** Byte offset of a view into `whole` (decodeEnvelope returns views, not copies). */
const offsetIn = (whole: Uint8Array, view: Uint8Array) => view.byteOffset - whole.byteOffset;

const flipBit = (bytes: Uint8Array, bit: number): Buffer => {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

// Codes a damaged envelope may produce. Never BAD_INPUT/BAD_CONFIG (caller errors) and
// never an untyped exception.
const TAMPER_CODES = [
  "ENVELOPE_BAD_FORMAT",
  "ENVELOPE_UNSUPPORTED_VERSION",
  "ENVELOPE_UNSUPPORTED_SUITE",
  "ENVELOPE_LIMIT_EXCEEDED",
  "ENVELOPE_DECRYPT_FAILED",
  "ENVELOPE_COMMITMENT_MISMATCH",
  "ENVELOPE_CONTEXT_MISMATCH",
  "ENVELOPE_NO_MATCHING_KEY",
  "ENVELOPE_UNWRAP_FAILED",
  // flags bit 1 set: a value now claims to be a stream key envelope; refused before unwrap.
  "ENVELOPE_WRONG_PURPOSE",
];

describe("round trip", () => {
  const envelopes = {
    "local-aes, cache on": new Envelope({ encrypt: aes }),
    "local-aes, cache off": new Envelope({ encrypt: aes, cache: false }),
    "generateDataKey provider": new Envelope({
      encrypt: countingProvider({ generateDataKey: true }),
    }),
    "multi-wrap": new Envelope({ encrypt: [aes, other] }),
    "stored context": new Envelope({ encrypt: aes, storeContext: true }),
  };

  it.each(Object.entries(envelopes))(
    "decrypt(encrypt(x, ctx), ctx) = x for bytes (%s)",
    async (_, env) => {
      await fc.assert(
        fc.asyncProperty(
          plaintextArb,
          contextArb,
          fc.boolean(),
          async (plaintext, context, text) => {
            const sealed = text
              ? await env.encrypt(plaintext, { context, output: "text" })
              : await env.encrypt(plaintext, { context });
            if (text) expect(sealed).toMatch(/^ev1:[A-Za-z0-9_-]+$/);
            const opened = await env.decrypt(sealed, { context });
            expect(Buffer.isBuffer(opened)).toBe(true);
            expect(opened.equals(plaintext)).toBe(true);
          },
        ),
        { numRuns: 60 },
      );
    },
  );

  it("round-trips Unicode strings as text in both output forms", async () => {
    const env = envelopes["local-aes, cache on"];
    await fc.assert(
      fc.asyncProperty(unicode(0, 300), contextArb, fc.boolean(), async (value, context, text) => {
        const sealed = await env.encrypt(value, { context, output: text ? "text" : "binary" });
        expect(await env.decrypt(sealed, { context, as: "text" })).toBe(value);
      }),
      { numRuns: 150 },
    );
  });

  it("accepts the context keys in any insertion order at decrypt", async () => {
    const env = envelopes["local-aes, cache on"];
    await fc.assert(
      fc.asyncProperty(plaintextArb, contextArb, async (plaintext, context) => {
        const sealed = await env.encrypt(plaintext, { context });
        const reversed = Object.fromEntries(Object.entries(context).reverse());
        expect((await env.decrypt(sealed, { context: reversed })).equals(plaintext)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("rejects any other context with a DecryptionError and no plaintext", async () => {
    const env = envelopes["local-aes, cache on"];
    await fc.assert(
      fc.asyncProperty(plaintextArb, contextArb, contextArb, async (plaintext, a, b) => {
        fc.pre(!encodeContext(a).equals(encodeContext(b)));
        const sealed = await env.encrypt(plaintext, { context: a });
        const error = await rejection(env.decrypt(sealed, { context: b }));
        expectEnvelopeError(error, DecryptionError, "ENVELOPE_DECRYPT_FAILED");
      }),
      { numRuns: 60 },
    );
  });

  it("types the result by output / as (checked by tsc)", () => {
    const env = envelopes["local-aes, cache on"];
    expectTypeOf(() => env.encrypt("x")).returns.resolves.toEqualTypeOf<Buffer>();
    expectTypeOf(() =>
      env.encrypt("x", { context: { a: "b" } }),
    ).returns.resolves.toEqualTypeOf<Buffer>();
    expectTypeOf(() =>
      env.encrypt("x", { output: "text" }),
    ).returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(() =>
      env.decrypt("ev1:", { context: {} }),
    ).returns.resolves.toEqualTypeOf<Buffer>();
    expectTypeOf(() =>
      env.decrypt("ev1:", { as: "text" }),
    ).returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(() => env.rewrap("ev1:", { to: aes })).returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(() =>
      env.rewrap(Buffer.alloc(0), { to: aes }),
    ).returns.resolves.toEqualTypeOf<Buffer>();
  });

  it("gives two encryptions of the same value different message ids and bytes", async () => {
    const env = envelopes["local-aes, cache on"];
    const a = await env.encrypt("same", { context: { id: "1" } });
    const b = await env.encrypt("same", { context: { id: "1" } });
    expect(a.equals(b)).toBe(false);
    expect(Buffer.from(decodeEnvelope(a).messageId).equals(decodeEnvelope(b).messageId)).toBe(
      false,
    );
  });

  it("refuses strings with lone surrogates instead of encrypting mangled text", async () => {
    const env = envelopes["local-aes, cache on"];
    const bad = ["\ud800", "a\udfffb"];
    for (const value of bad) {
      expectEnvelopeError(await rejection(env.encrypt(value)), undefined, "ENVELOPE_BAD_INPUT");
      expectEnvelopeError(
        await rejection(env.encrypt("x", { context: { k: value } })),
        undefined,
        "ENVELOPE_BAD_INPUT",
      );
    }
  });
});

describe("single bit flips", () => {
  /**
   * Decrypts every single-bit variant of `sealed`; returns the error code per bit ("ok"
   * where it opened). Only a flip inside a wrapped-key entry of a multi-wrap envelope may
   * open, because another entry still unwraps the same data key (entries are outside the
   * AAD by design); then the plaintext must be the original one.
   */
  async function flipAll(env: Envelope, sealed: Buffer, context?: EncryptionContext) {
    const parts = decodeEnvelope(sealed);
    const original = await env.decrypt(sealed, { context });
    const entriesFrom = 68;
    const entriesTo = parts.storedContext
      ? offsetIn(sealed, parts.storedContext) - 2
      : offsetIn(sealed, parts.body) - 4;
    const codes: string[] = [];
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const result = await outcome(env.decrypt(flipBit(sealed, bit), { context }));
      if (result.ok) {
        const byte = bit >> 3;
        expect(parts.entries.length, `bit ${bit} flipped still decrypted`).toBeGreaterThan(1);
        expect(byte >= entriesFrom && byte < entriesTo, `bit ${bit} flipped still decrypted`).toBe(
          true,
        );
        expect(result.value.equals(original)).toBe(true);
        codes.push("ok");
      } else {
        codes.push(expectEnvelopeError(result.error, undefined, TAMPER_CODES).code);
      }
    }
    return codes;
  }

  it("every bit of a one-entry envelope is protected, with the expected error per field", async () => {
    const env = new Envelope({ encrypt: aes });
    const context = { table: "users", column: "email", id: "42" };
    const sealed = await env.encrypt("alice@example.com", { context });
    const codes = await flipAll(env, sealed, context);
    const parts = decodeEnvelope(sealed);
    const entry = parts.entries[0]!;
    const byteCodes = (from: number, to: number) => new Set(codes.slice(from * 8, to * 8));
    expect(byteCodes(0, 1)).toEqual(new Set(["ENVELOPE_UNSUPPORTED_VERSION"]));
    // suite: bit 1 turns 0x01 into 0x03 (FORMAT.md §15), a known suite whose KDF yields
    // another commitment; every other bit makes an unknown suite.
    expect(codes[1 * 8 + 1]).toBe("ENVELOPE_COMMITMENT_MISMATCH");
    expect(new Set(codes.slice(8, 16).filter((_, bit) => bit !== 1))).toEqual(
      new Set(["ENVELOPE_UNSUPPORTED_SUITE"]),
    );
    // flags: bit 1 is the stream-key purpose (decrypt refuses it); bit 2 (padded) decodes
    // and is in the AAD, so GCM refuses it; every other bit breaks the layout.
    expect(codes[2 * 8 + 1]).toBe("ENVELOPE_WRONG_PURPOSE");
    expect(codes[2 * 8 + 2]).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(new Set(codes.slice(2 * 8, 3 * 8).filter((_, i) => i !== 1 && i !== 2))).toEqual(
      new Set(["ENVELOPE_BAD_FORMAT"]),
    );
    expect(byteCodes(3, 67)).toEqual(new Set(["ENVELOPE_COMMITMENT_MISMATCH"]));
    expect(byteCodes(67, 68)).toEqual(new Set(["ENVELOPE_BAD_FORMAT"]));
    const wrappedAt = offsetIn(sealed, entry.wrapped);
    expect(byteCodes(wrappedAt, wrappedAt + entry.wrapped.length)).toEqual(
      new Set(["ENVELOPE_UNWRAP_FAILED"]),
    );
    const bodyAt = offsetIn(sealed, parts.body);
    expect(bodyAt + parts.body.length).toBe(sealed.length);
    expect(byteCodes(bodyAt, sealed.length)).toEqual(new Set(["ENVELOPE_DECRYPT_FAILED"]));
    // Length fields and the ciphertext length: structural errors only.
    for (const code of byteCodes(bodyAt - 4, bodyAt)) {
      expect(["ENVELOPE_BAD_FORMAT", "ENVELOPE_LIMIT_EXCEEDED"]).toContain(code);
    }
  });

  it("every bit is protected when the cache is warm for that very message", async () => {
    // A warm cache remembers derived message keys; an altered commitment or message id
    // must still be rejected rather than served from the cache.
    const env = new Envelope({ encrypt: aes });
    const sealed = await env.encrypt("warm", { context: { id: "7" } });
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      expect(await env.decrypt(sealed, { context: { id: "7" }, as: "text" })).toBe("warm");
      const result = await outcome(env.decrypt(flipBit(sealed, bit), { context: { id: "7" } }));
      expect(result.ok, `bit ${bit} flipped still decrypted`).toBe(false);
      if (!result.ok) expectEnvelopeError(result.error, undefined, TAMPER_CODES);
    }
  });

  it("every bit of a multi-wrap envelope with a stored context is protected", async () => {
    const env = new Envelope({ encrypt: [aes, other], storeContext: true });
    const sealed = await env.encrypt(new Uint8Array([0, 1, 2, 255]), {
      context: { tenant: "ä€😀" },
    });
    await flipAll(env, sealed);
    await flipAll(env, sealed, { tenant: "ä€😀" });
  });

  it("a flip in one entry of a multi-wrap envelope is caught even though the other entry opens", async () => {
    // The damaged entry is tried first and fails; the intact one must still open it, and
    // a flip that makes a wrapped key unwrap to a different key must never yield data.
    const env = new Envelope({ encrypt: [aes, other] });
    const sealed = await env.encrypt("two keys");
    const first = decodeEnvelope(sealed).entries[0]!;
    const at = offsetIn(sealed, first.wrapped);
    for (let bit = at * 8; bit < (at + first.wrapped.length) * 8; bit++) {
      expect(await env.decrypt(flipBit(sealed, bit), { as: "text" })).toBe("two keys");
    }
  });

  it("property: a random bit flip anywhere never yields a plaintext", async () => {
    const envs = [
      new Envelope({ encrypt: aes }),
      new Envelope({ encrypt: aes, storeContext: true }),
    ];
    await fc.assert(
      fc.asyncProperty(
        plaintextArb,
        contextArb,
        fc.nat(),
        fc.constantFrom(0, 1),
        async (plaintext, context, n, which) => {
          const env = envs[which]!;
          const sealed = await env.encrypt(plaintext, { context });
          const result = await outcome(
            env.decrypt(flipBit(sealed, n % (sealed.length * 8)), { context }),
          );
          expect(result.ok).toBe(false);
          if (!result.ok) expectEnvelopeError(result.error, undefined, TAMPER_CODES);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a wrapped key that unwraps to another data key is caught by the commitment", async () => {
    // A provider without integrity on the wrapped key (XOR "wrapping") makes a bit flip
    // produce a different 32-byte data key; only the key commitment can catch that.
    const mask = randomBytes(32);
    const xor = (k: Uint8Array) => Buffer.from(k.map((b, i) => b ^ mask[i]!));
    const weak = {
      id: "weak",
      keyRef: "w1",
      handles: (e: { providerId: string }) => e.providerId === "weak",
      wrap: async (dataKey: Uint8Array) => ({
        providerId: "weak",
        keyRef: "w1",
        wrapped: xor(dataKey),
      }),
      unwrap: async (entry: { wrapped: Uint8Array }) => xor(entry.wrapped),
    };
    const env = new Envelope({ encrypt: weak });
    const sealed = await env.encrypt("salamander");
    const at = offsetIn(sealed, decodeEnvelope(sealed).entries[0]!.wrapped);
    for (let bit = at * 8; bit < (at + 32) * 8; bit++) {
      const error = await rejection(env.decrypt(flipBit(sealed, bit)));
      expectEnvelopeError(error, DecryptionError, "ENVELOPE_COMMITMENT_MISMATCH");
    }
  });

  it("a changed character of the text form never yields a plaintext", async () => {
    const env = new Envelope({ encrypt: aes });
    const text = await env.encrypt("text column", { output: "text" });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:=+/ ";
    await fc.assert(
      fc.asyncProperty(fc.nat(text.length - 1), fc.constantFrom(...alphabet), async (i, c) => {
        fc.pre(text[i] !== c);
        const changed = text.slice(0, i) + c + text.slice(i + 1);
        const result = await outcome(env.decrypt(changed));
        expect(result.ok).toBe(false);
        if (!result.ok) expectEnvelopeError(result.error, undefined, TAMPER_CODES);
      }),
      { numRuns: 300 },
    );
  });
});

describe("truncation", () => {
  it("every proper prefix of an envelope is a FormatError (decoder and decrypt)", async () => {
    const env = new Envelope({ encrypt: [aes, other], storeContext: true });
    const sealed = await env.encrypt("truncate me", { context: { a: "b" } });
    for (let length = 0; length < sealed.length; length++) {
      const prefix = sealed.subarray(0, length);
      expectEnvelopeError(
        thrown(() => decodeEnvelope(prefix)),
        FormatError,
        "ENVELOPE_BAD_FORMAT",
      );
      expectEnvelopeError(await rejection(env.decrypt(prefix)), FormatError, "ENVELOPE_BAD_FORMAT");
    }
  });

  it("every proper prefix of the text form is a FormatError", async () => {
    const env = new Envelope({ encrypt: aes });
    const text = await env.encrypt("truncate the text", { output: "text" });
    for (let length = 0; length < text.length; length++) {
      const error = await rejection(env.decrypt(text.slice(0, length)));
      expectEnvelopeError(error, FormatError, "ENVELOPE_BAD_FORMAT");
    }
  });

  it("property: any truncation or any trailing bytes is a FormatError", async () => {
    const env = new Envelope({ encrypt: aes });
    await fc.assert(
      fc.asyncProperty(
        plaintextArb,
        contextArb,
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        async (plaintext, context, n, extra) => {
          const sealed = await env.encrypt(plaintext, { context });
          const cut = sealed.subarray(0, n % sealed.length);
          expectEnvelopeError(await rejection(env.decrypt(cut, { context })), FormatError);
          const longer = Buffer.concat([sealed, extra]);
          expectEnvelopeError(await rejection(env.decrypt(longer, { context })), FormatError);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("rewrap", () => {
  it("property: keeps body, message id, commitment and context; the result decrypts", async () => {
    const a = localAesProvider({ keys: randomBytes(32) });
    const b = localAesProvider({ keys: randomBytes(32) });
    const kms = countingProvider({ generateDataKey: true });
    await fc.assert(
      fc.asyncProperty(
        plaintextArb,
        contextArb,
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        async (plaintext, context, text, storeContext, keep) => {
          const writer = new Envelope({ encrypt: a, storeContext });
          const admin = new Envelope({ encrypt: a, decrypt: [b, kms] });
          const sealed = text
            ? await writer.encrypt(plaintext, { context, output: "text" })
            : await writer.encrypt(plaintext, { context });
          const moved = await admin.rewrap(sealed, { to: [b, kms], context, keep });
          expect(typeof moved).toBe(typeof sealed);
          const before = decodeEnvelope(typeof sealed === "string" ? fromText(sealed) : sealed);
          const after = decodeEnvelope(typeof moved === "string" ? fromText(moved) : moved);
          expect(Buffer.from(after.body).equals(before.body)).toBe(true);
          expect(Buffer.from(after.messageId).equals(before.messageId)).toBe(true);
          expect(Buffer.from(after.commitment).equals(before.commitment)).toBe(true);
          expect(after.flags).toBe(before.flags);
          expect(after.storedContext && Buffer.from(after.storedContext)).toEqual(
            before.storedContext && Buffer.from(before.storedContext),
          );
          const refs = after.entries.map((e) => `${e.providerId}:${e.keyRef}`);
          const expected = [`local-aes:${b.keyRef}`, `counting:${kms.keyRef}`];
          expect(refs).toEqual(keep ? [...expected, `local-aes:${a.keyRef}`] : expected);
          for (const only of [b, kms]) {
            const reader = new Envelope({ encrypt: only, cache: false });
            expect((await reader.decrypt(moved, { context })).equals(plaintext)).toBe(true);
          }
          const oldOnly = new Envelope({ encrypt: a, cache: false });
          if (keep)
            expect((await oldOnly.decrypt(moved, { context })).equals(plaintext)).toBe(true);
          else
            expectEnvelopeError(
              await rejection(oldOnly.decrypt(moved, { context })),
              DecryptionError,
              "ENVELOPE_NO_MATCHING_KEY",
            );
        },
      ),
      { numRuns: 40 },
    );
  });

  it("is idempotent: rewrapping to the key already present returns the same bytes", async () => {
    const env = new Envelope({ encrypt: aes });
    const sealed = await env.encrypt("stay");
    expect((await env.rewrap(sealed, { to: aes })).equals(sealed)).toBe(true);
    const text = toText(sealed);
    expect(await env.rewrap(text, { to: aes })).toBe(text);
  });

  it("uses a provider's native rewrap, then unwraps only the new entry to check it", async () => {
    // Two versions of one KMS key: the fake shares its master key, like a real KMS
    // that can reach every version of a key.
    const master = randomBytes(32);
    const v1 = countingProvider({
      keyRef: "v1",
      masterKey: master,
      anyKeyRef: true,
      nativeRewrap: true,
    });
    const v2 = countingProvider({
      keyRef: "v2",
      masterKey: master,
      anyKeyRef: true,
      nativeRewrap: true,
    });
    const old = await new Envelope({ encrypt: v1 }).encrypt("native");
    const moved = await new Envelope({ encrypt: v1 }).rewrap(old, { to: v2 });
    expect(v2.calls.rewrap).toBe(1);
    // No local unwrap of the old entry; one unwrap of the KMS's result (commitment check).
    expect(v1.calls.unwrap).toBe(0);
    expect(v2.calls.unwrap).toBe(1);
    expect(decodeEnvelope(moved).entries.map((e) => e.keyRef)).toEqual(["v2"]);
    expect(Buffer.from(decodeEnvelope(moved).body).equals(decodeEnvelope(old).body)).toBe(true);
    expect(await new Envelope({ encrypt: v2 }).decrypt(moved, { as: "text" })).toBe("native");
  });

  it("reports native only when a KMS moved an entry and the data key never came here", async () => {
    const master = randomBytes(32);
    const options = { masterKey: master, anyKeyRef: true, nativeRewrap: true } as const;
    const v1 = countingProvider({ keyRef: "v1", ...options });
    const v2 = countingProvider({ keyRef: "v2", ...options });
    const events: AuditEvent[] = [];
    const env = new Envelope({ encrypt: v1, onAudit: (e) => events.push(e) });
    const old = await env.encrypt("n");
    const rewrapEvent = () => events.filter((e) => e.operation === "rewrap").at(-1)!;
    const moved = await env.rewrap(old, { to: v2 });
    expect(rewrapEvent().native).toBe(true);
    // Already under v2: nothing moved, so nothing was rewrapped natively either.
    expect((await env.rewrap(moved, { to: v2 })).equals(moved)).toBe(true);
    expect(rewrapEvent().native).toBe(false);
  });

  it("writes one entry per target even when a target is named twice", async () => {
    const env = new Envelope({ encrypt: aes });
    const sealed = await env.encrypt("twice");
    const moved = await env.rewrap(sealed, { to: [other, other] });
    expect(decodeEnvelope(moved).entries.map((e) => e.keyRef)).toEqual([other.keyRef]);
    expect(await new Envelope({ encrypt: other }).decrypt(moved, { as: "text" })).toBe("twice");
  });

  it("treats null options like no options (JavaScript callers)", async () => {
    const env = new Envelope({ encrypt: aes });
    const loose = env as unknown as {
      encrypt(p: string, o: null): Promise<Buffer>;
      decrypt(s: Buffer, o: null): Promise<Buffer>;
      rewrap(s: Buffer, o: null): Promise<Buffer>;
    };
    const sealed = await loose.encrypt("null options", null);
    expect((await loose.decrypt(sealed, null)).toString()).toBe("null options");
    expect((await loose.rewrap(sealed, null)).equals(sealed)).toBe(true);
  });

  it("refuses to rewrap a wrapped key that does not match the commitment", async () => {
    const a = localAesProvider({ keys: randomBytes(32) });
    const env = new Envelope({ encrypt: a });
    const x = await env.encrypt("x");
    const y = await env.encrypt("y");
    // Splice y's (valid) wrapped key into x: it unwraps fine but to the wrong data key.
    const spliced = Buffer.from(x);
    const xe = decodeEnvelope(x).entries[0]!;
    spliced.set(decodeEnvelope(y).entries[0]!.wrapped, offsetIn(x, xe.wrapped));
    const error = await rejection(env.rewrap(spliced, { to: other }));
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_COMMITMENT_MISMATCH");
    expectEnvelopeError(
      await rejection(env.decrypt(spliced)),
      DecryptionError,
      "ENVELOPE_COMMITMENT_MISMATCH",
    );
  });
});

describe("context canonicalization", () => {
  const shuffled = (context: EncryptionContext, order: number[]) => {
    const entries = Object.entries(context);
    const keyed = entries.map((entry, i) => ({
      entry,
      rank: order[i % Math.max(order.length, 1)] ?? i,
    }));
    keyed.sort((x, y) => x.rank - y.rank);
    return Object.fromEntries(keyed.map((k) => k.entry));
  };

  it("is independent of insertion order", () => {
    fc.assert(
      fc.property(contextArb, fc.array(fc.integer()), (context, order) => {
        expect(encodeContext(shuffled(context, order)).equals(encodeContext(context))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("a key named __proto__ is an ordinary pair (encoded, authenticated, not dropped)", async () => {
    const context = JSON.parse('{"__proto__":"x","table":"users"}') as Record<string, string>;
    expect(Object.keys(context)).toEqual(["__proto__", "table"]);
    expect(decodeContext(encodeContext(context))).toEqual(context);
    expect(encodeContext(context).equals(encodeContext({ table: "users" }))).toBe(false);
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const sealed = await envelope.encrypt("v", { context });
    const error = await envelope.decrypt(sealed, { context: { table: "users" } }).catch((e) => e);
    expect((error as { code?: string }).code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe("v");
  });

  it("decodes back to the same context (so the encoding is injective)", () => {
    fc.assert(
      fc.property(contextArb, (context) => {
        expect(decodeContext(encodeContext(context))).toEqual({ ...context });
      }),
      { numRuns: 500 },
    );
  });

  it("gives different contexts different encodings (random and near-miss pairs)", () => {
    const near = contextArb.chain((c) =>
      fc.tuple(
        fc.constant(c),
        fc.oneof(
          // change one value
          fc
            .tuple(fc.constantFrom(...Object.keys(c), "k"), unicode(0, 8))
            .map(([k, v]) => ({ ...c, [k]: v })),
          // drop one key
          fc.constantFrom(...Object.keys(c), "absent").map((k) => {
            const copy: Record<string, string> = { ...c };
            delete copy[k];
            return copy;
          }),
          // move a character between a key and its value
          fc.constant(
            Object.fromEntries(
              Object.entries(c).map(([k, v]) => {
                const [first, ...rest] = Array.from(v);
                return first === undefined ? [k, v] : [k + first, rest.join("")];
              }),
            ),
          ),
          contextArb,
        ),
      ),
    );
    const same = (x: EncryptionContext, y: EncryptionContext) => {
      const kx = Object.keys(x).sort();
      const ky = Object.keys(y).sort();
      return kx.length === ky.length && kx.every((k, i) => k === ky[i] && x[k] === y[k]);
    };
    fc.assert(
      fc.property(near, ([x, y]) => {
        expect(encodeContext(x).equals(encodeContext(y))).toBe(same(x, y));
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    [{ a: "bc" }, { ab: "c" }],
    [{ a: "", b: "" }, { a: "\u0000\u0000\u0001b\u0000\u0000" }],
    [{ a: "1", b: "2" }, { a: "1\u0000\u0001b\u0000\u00012" }],
    [{ é: "x" }, { "e\u0301": "x" }],
    [{ a: "x" }, { A: "x" }],
  ])("known ambiguity traps encode differently: %j vs %j", (x, y) => {
    expect(encodeContext(x).equals(encodeContext(y))).toBe(false);
  });

  it("orders keys by UTF-8 bytes, not UTF-16 code units", () => {
    // UTF-16 puts U+1F600 (0xD83D…) before U+FF61; UTF-8 bytes (F0… vs EF…) do not.
    const encoded = encodeContext({ "\uff61": "a", "😀": "b", z: "c" });
    const decoded = Object.keys(decodeContext(encoded));
    expect(decoded).toEqual(["z", "\uff61", "😀"]);
  });

  it("empty object, undefined and no context are the same context", async () => {
    expect(encodeContext({}).equals(encodeContext(undefined))).toBe(true);
    const env = new Envelope({ encrypt: aes });
    const sealed = await env.encrypt("x");
    expect(await env.decrypt(sealed, { context: {}, as: "text" })).toBe("x");
    const withEmpty = await env.encrypt("y", { context: {} });
    expect(await env.decrypt(withEmpty, { as: "text" })).toBe("y");
  });

  it("rejects malformed contexts as caller errors", () => {
    const bad: unknown[] = [
      null,
      [],
      "ctx",
      { a: 1 },
      { a: undefined },
      { "": "x" },
      { ["k".repeat(1025)]: "x" },
      { k: "v".repeat(8193) },
    ];
    for (const context of bad) {
      expectEnvelopeError(
        thrown(() => encodeContext(context as EncryptionContext)),
        undefined,
        "ENVELOPE_BAD_INPUT",
      );
    }
  });

  it("refuses a Map, Date or other non-plain object instead of binding the empty context", () => {
    // Object.keys() of these is [], so without a check they would silently seal under {}
    // and open with no context at all.
    const bad: unknown[] = [
      new Map([["table", "users"]]),
      new Set(["users"]),
      new Date(0),
      /users/,
      new String("users"),
      Promise.resolve({}),
    ];
    for (const context of bad) {
      expectEnvelopeError(
        thrown(() => encodeContext(context as EncryptionContext)),
        undefined,
        "ENVELOPE_BAD_INPUT",
      );
    }
    // Plain objects in every flavour stay accepted, with the same bytes.
    class Row {
      table = "users";
    }
    const nullProto = Object.assign(Object.create(null), { table: "users" });
    const plain = encodeContext({ table: "users" });
    expect(encodeContext({ ...new Row() }).equals(plain)).toBe(true);
    // A class instance is refused (issue 11 item 7): its shape is not a plain record.
    expectEnvelopeError(
      thrown(() => encodeContext(new Row() as unknown as EncryptionContext)),
      undefined,
      "ENVELOPE_BAD_INPUT",
    );
    expect(encodeContext(nullProto).equals(plain)).toBe(true);
  });

  it("every client entry point refuses a bad context (null included) before any key is used", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: false });
    const sealed = await env.encrypt("x");
    const materials = await env.generateDataKey();
    const calls = { ...kms.calls };
    for (const context of [null, new Map([["table", "users"]]), new Date(0)]) {
      const c = context as unknown as EncryptionContext;
      const attempts: [string, () => unknown][] = [
        ["encrypt", () => env.encrypt("x", { context: c })],
        ["decrypt", () => env.decrypt(sealed, { context: c })],
        ["rewrap", () => env.rewrap(sealed, { context: c })],
        ["generateDataKey", () => env.generateDataKey({ context: c })],
        ["unwrapDataKey", () => env.unwrapDataKey(sealed, { context: c })],
        ["encryptWithDataKey", () => env.encryptWithDataKey(materials, "x", { context: c })],
      ];
      for (const [name, attempt] of attempts) {
        const error = await rejection(Promise.resolve().then(attempt));
        expect(error, `${name} with ${String(context)}`).toMatchObject({
          code: "ENVELOPE_BAD_INPUT",
        });
      }
    }
    expect(kms.calls).toEqual(calls);
    materials.dataKey.fill(0);
  });

  it("a stored context with a flipped bit is not silently accepted", async () => {
    const env = new Envelope({ encrypt: aes, storeContext: true });
    const sealed = await env.encrypt("x", { context: { a: "1", b: "2" } });
    const stored = decodeEnvelope(sealed).storedContext!;
    const at = offsetIn(sealed, stored);
    for (let bit = at * 8; bit < (at + stored.length) * 8; bit++) {
      const error = await rejection(env.decrypt(flipBit(sealed, bit)));
      expectEnvelopeError(error, undefined, ["ENVELOPE_BAD_FORMAT", "ENVELOPE_DECRYPT_FAILED"]);
    }
  });

  it("ProviderError is what a corrupted local-aes wrapped key yields", async () => {
    const env = new Envelope({ encrypt: aes });
    const sealed = await env.encrypt("x");
    const at = offsetIn(sealed, decodeEnvelope(sealed).entries[0]!.wrapped);
    const error = await rejection(env.decrypt(flipBit(sealed, at * 8)));
    expectEnvelopeError(error, ProviderError, "ENVELOPE_UNWRAP_FAILED");
  });
});
