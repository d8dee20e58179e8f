import {
  ConfigError,
  decodeEnvelope,
  Envelope,
  encodeEnvelope,
  FormatError,
  fromText,
  inspectEnvelope,
  MAX_ENTRIES,
  MAX_KEY_REF_LENGTH,
  MAX_WRAPPED_KEY_LENGTH,
  toText,
} from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";
import { craft, rawContext } from "./support/craft.js";

const FORMAT_CODES = [
  "ENVELOPE_BAD_FORMAT",
  "ENVELOPE_UNSUPPORTED_VERSION",
  "ENVELOPE_UNSUPPORTED_SUITE",
  "ENVELOPE_LIMIT_EXCEEDED",
];

const MiB = 1024 * 1024;

/** Decodes and returns the FormatError (or undefined when the bytes were valid). */
function decodeError(bytes: Uint8Array): FormatError | undefined {
  try {
    decodeEnvelope(bytes);
    return undefined;
  } catch (error) {
    return expectEnvelopeError(error, FormatError, FORMAT_CODES) as FormatError;
  }
}

/** Growth of ArrayBuffer memory (Buffers live there) while `fn` runs. */
function arrayBufferGrowth(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

/** A valid envelope (binary) and the client that made it, for prefix tests. */
async function sample(storeContext = false) {
  const kms = countingProvider();
  const env = new Envelope({ encrypt: kms, storeContext });
  const sealed = await env.encrypt("hostile", { context: { t: "u" } });
  return { env, kms, sealed };
}

describe("random input", () => {
  it("random bytes only ever produce a FormatError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(decodeError(bytes)).toBeDefined();
      }),
      { numRuns: 3000 },
    );
  });

  it("random bytes behind a valid version/suite/flags header only produce a FormatError", () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.uint8Array({ maxLength: 600 }), (flags, rest) => {
        const bytes = Buffer.concat([Buffer.from([1, 1, flags]), rest]);
        expect(decodeError(bytes)).toBeDefined();
      }),
      { numRuns: 3000 },
    );
  });

  it("structurally plausible envelopes with random lengths decode or fail with FormatError", () => {
    const entry = fc.record({
      providerId: fc.constantFrom("local-aes", "aws-kms", "Bad Id", "", "x".repeat(70)),
      providerIdLength: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
      keyRef: fc.string({ maxLength: 40 }),
      keyRefLength: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
      wrapped: fc.uint8Array({ maxLength: 64 }),
      wrappedLength: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.record({
          flags: fc.integer({ min: 0, max: 3 }),
          entryCount: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
          entries: fc.array(entry, { minLength: 0, maxLength: 4 }),
          context: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
          contextLength: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
          ciphertextLength: fc.option(fc.nat(), { nil: undefined }),
          body: fc.uint8Array({ maxLength: 64 }),
        }),
        fc.nat(),
        (options, cut) => {
          const bytes = craft(options);
          const error = decodeError(bytes);
          if (error === undefined) {
            // Accepted only if it is exactly what the encoder would write for those parts.
            const parts = decodeEnvelope(bytes);
            expect(parts.entries.length).toBeGreaterThan(0);
            expect(parts.entries.length).toBeLessThanOrEqual(MAX_ENTRIES);
            expect(encodeEnvelope(parts).equals(bytes)).toBe(true);
          }
          // And any strict prefix is always rejected.
          expect(decodeError(bytes.subarray(0, cut % bytes.length))).toBeDefined();
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("prefixes of valid envelopes", () => {
  it.each([false, true])(
    "every prefix fails with a truncation error naming a field (storeContext %s)",
    async (storeContext) => {
      const { env, kms, sealed } = await sample(storeContext);
      for (let n = 0; n < sealed.length; n++) {
        const error = decodeError(sealed.subarray(0, n))!;
        expect(error.code).toBe("ENVELOPE_BAD_FORMAT");
        expect(error.message).toMatch(/truncated at field "[^"]+"/);
        expect(typeof error.details.field).toBe("string");
        expectEnvelopeError(await rejection(env.decrypt(sealed.subarray(0, n))), FormatError);
      }
      // Parsing failed before any key was asked for.
      expect(kms.calls.unwrap).toBe(0);
    },
  );

  it("names the field where the input ends", async () => {
    const { sealed } = await sample();
    expect(decodeError(sealed.subarray(0, 0))!.details.field).toBe("version");
    expect(decodeError(sealed.subarray(0, 10))!.details.field).toBe("messageId");
    expect(decodeError(sealed.subarray(0, 40))!.details.field).toBe("commitment");
    expect(decodeError(sealed.subarray(0, 67))!.details.field).toBe("entryCount");
    expect(decodeError(sealed.subarray(0, sealed.length - 1))!.details.field).toBe("body");
  });
});

describe("declared lengths beyond the input", () => {
  it("a u32 0xffffffff ciphertext length is refused before allocating", () => {
    const bytes = craft({ ciphertextLength: 0xffffffff });
    let error: FormatError | undefined;
    const growth = arrayBufferGrowth(() => {
      error = decodeError(bytes);
    });
    expect(error?.code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    expect(error?.details.field).toBe("ciphertextLength");
    expect(growth).toBeLessThan(MiB);
  });

  it("a ~100-byte input declaring a 1 GiB body allocates nothing close to it", async () => {
    const bytes = craft({ ciphertextLength: 2 ** 30 - 16 });
    expect(bytes.length).toBeLessThan(200);
    const growth = arrayBufferGrowth(() => {
      for (let i = 0; i < 50; i++) {
        const error = decodeError(bytes);
        expect(error?.code).toBe("ENVELOPE_BAD_FORMAT");
        expect(error?.details.field).toBe("body");
      }
    });
    expect(growth).toBeLessThan(MiB);
    // The same through the client and the text form.
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms });
    const text = toText(bytes);
    const before = process.memoryUsage().arrayBuffers;
    expectEnvelopeError(await rejection(env.decrypt(bytes)), FormatError, "ENVELOPE_BAD_FORMAT");
    expectEnvelopeError(await rejection(env.decrypt(text)), FormatError, "ENVELOPE_BAD_FORMAT");
    expectEnvelopeError(
      thrown(() => inspectEnvelope(text)),
      FormatError,
      "ENVELOPE_BAD_FORMAT",
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MiB);
    expect(kms.calls.unwrap).toBe(0);
  });

  it.each([
    ["u16 max key reference length", { keyRefLength: 0xffff }, "entries[0].keyRef"],
    [
      "key reference one over the limit",
      { keyRefLength: MAX_KEY_REF_LENGTH + 1 },
      "entries[0].keyRef",
    ],
    [
      "key reference at the limit, data missing",
      { keyRefLength: MAX_KEY_REF_LENGTH },
      "entries[0].keyRef",
    ],
    ["zero-length key reference", { keyRefLength: 0 }, "entries[0].keyRef"],
    ["u16 max wrapped key length", { wrappedLength: 0xffff }, "entries[0].wrapped"],
    [
      "wrapped key one over the limit",
      { wrappedLength: MAX_WRAPPED_KEY_LENGTH + 1 },
      "entries[0].wrapped",
    ],
    [
      "wrapped key at the limit, data missing",
      { wrappedLength: MAX_WRAPPED_KEY_LENGTH },
      "entries[0].wrapped",
    ],
    ["zero-length wrapped key", { wrappedLength: 0 }, "entries[0].wrapped"],
    ["u8 max provider id length", { providerIdLength: 255 }, "entries[0].providerId"],
    ["zero-length provider id", { providerIdLength: 0 }, "entries[0].providerId"],
  ] as const)("%s → FormatError naming %s", (_, entry, field) => {
    const bytes = craft({ entries: [entry] });
    const error = decodeError(bytes);
    expect(error?.code).toBe("ENVELOPE_BAD_FORMAT");
    expect(String(error?.details.field)).toContain(field.split(".")[0]);
    expect(error?.message).toContain(field);
  });

  it("a stored-context length of 0xffff or below 2 is refused", () => {
    expect(
      decodeError(craft({ flags: 1, contextLength: 0xffff, context: rawContext([]) }))?.code,
    ).toBe("ENVELOPE_BAD_FORMAT");
    for (const contextLength of [0, 1]) {
      const error = decodeError(
        craft({ flags: 1, contextLength, context: new Uint8Array(contextLength) }),
      );
      expect(error?.details.field).toBe("contextLength");
    }
  });

  it("ciphertext lengths pointing one byte short or long are refused", () => {
    const body = new Uint8Array(20);
    expect(decodeError(craft({ body, ciphertextLength: 4 }))).toBeUndefined();
    expect(decodeError(craft({ body, ciphertextLength: 5 }))?.details.field).toBe("body");
    expect(decodeError(craft({ body, ciphertextLength: 3 }))?.details.field).toBe("end");
  });
});

describe("entry counts", () => {
  it("accepts up to 16 entries and refuses 0 and 17..255 before reading them", () => {
    const entry = { providerId: "local-aes" };
    expect(decodeEnvelope(craft({ entries: Array(MAX_ENTRIES).fill(entry) })).entries).toHaveLength(
      16,
    );
    expect(decodeError(craft({ entries: [], entryCount: 0 }))?.details.field).toBe("entryCount");
    for (const count of [17, 100, 255]) {
      // Declare many entries but back them with real data: still refused by count.
      const error = decodeError(craft({ entries: Array(count).fill(entry) }));
      expect(error?.details.field).toBe("entryCount");
      expect(error?.message).toContain(`limit ${MAX_ENTRIES}`);
    }
  });

  it("a declared count larger than the entries present is a truncation", () => {
    expect(decodeError(craft({ entryCount: 5 }))?.code).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("provider ids and key references are validated", () => {
    expect(decodeError(craft({ entries: [{ providerId: "Local-AES" }] }))?.message).toContain(
      "providerId",
    );
    expect(decodeError(craft({ entries: [{ providerId: "-x" }] }))?.code).toBe(
      "ENVELOPE_BAD_FORMAT",
    );
    const badUtf8 = craft({ entries: [{ keyRef: "ab" }] });
    badUtf8[3 + 64 + 1 + 1 + 9 + 2] = 0xc3; // a lead byte followed by "b": invalid UTF-8
    expect(decodeError(badUtf8)?.message).toContain("UTF-8");
  });
});

describe("header fields", () => {
  it.each([0, 2, 0xff])("version %i is refused as unsupported", (version) => {
    expect(decodeError(craft({ version }))?.code).toBe("ENVELOPE_UNSUPPORTED_VERSION");
  });
  // Suite 2 is signed mode (FORMAT.md §14), 3 the one-step SHA-512 KDF (§15); 4 is the next unknown one.
  it.each([0, 4, 0xff])("suite %i is refused as unsupported", (suite) => {
    expect(decodeError(craft({ suite }))?.code).toBe("ENVELOPE_UNSUPPORTED_SUITE");
  });
  // Bit 1 (0x02) is the stream-key purpose: known to the decoder, refused by decrypt.
  // Bit 2 (0x04) is padding (FORMAT.md §2.3); 6 sets bits 1 and 2 together, which no
  // envelope may (a stream key is never padded).
  it.each([6, 7, 8, 0x80, 0xfc, 0xfe])("unknown flag bits 0x%s are refused", (flags) => {
    expect(decodeError(craft({ flags }))?.details.field).toBe("flags");
  });
  it.each([4, 5])("flags 0x%s (padded) decode with a non-empty ciphertext", (flags) => {
    const context = flags & 1 ? { context: new Uint8Array(2) } : {};
    expect(decodeError(craft({ flags, ...context, body: new Uint8Array(17) }))).toBeUndefined();
    // Padding is at least the 0x80 marker: an empty padded plaintext cannot exist.
    expect(decodeError(craft({ flags, ...context }))?.details.field).toBe("ciphertextLength");
  });
  it.each([2, 3])("flags 0x%s (stream-key purpose) decode", (flags) => {
    expect(
      decodeError(craft({ flags, ...(flags & 1 ? { context: new Uint8Array(2) } : {}) })),
    ).toBeUndefined();
  });
});

describe("stored contexts from hostile input", () => {
  const cases: [string, Uint8Array][] = [
    [
      "keys out of order",
      rawContext([
        ["b", "1"],
        ["a", "2"],
      ]),
    ],
    [
      "duplicate keys",
      rawContext([
        ["a", "1"],
        ["a", "2"],
      ]),
    ],
    ["empty key", rawContext([["", "1"]])],
    ["invalid UTF-8 key", rawContext([[Buffer.from([0xff]), "1"]])],
    ["invalid UTF-8 value", rawContext([["a", Buffer.from([0xc3])]])],
    ["more pairs declared than present", rawContext([["a", "1"]], 3)],
    ["more pairs declared than allowed", rawContext([], 0xffff)],
    ["trailing bytes", Buffer.concat([rawContext([["a", "1"]]), Buffer.from([0])])],
    ["key length past the end", Buffer.from([0, 1, 0xff, 0xff, 0x61])],
  ];

  it.each(cases)(
    "%s: inspect and decrypt throw FormatError, the provider is never called",
    async (_, context) => {
      const bytes = craft({ flags: 1, context });
      decodeEnvelope(bytes); // the context is parsed lazily; the envelope frame is fine
      expectEnvelopeError(
        thrown(() => inspectEnvelope(bytes)),
        FormatError,
        "ENVELOPE_BAD_FORMAT",
      );
      const kms = countingProvider({ id: "local-aes", keyRef: "0123456789abcdef" });
      const env = new Envelope({ encrypt: kms });
      expectEnvelopeError(await rejection(env.decrypt(bytes)), FormatError, "ENVELOPE_BAD_FORMAT");
      expectEnvelopeError(
        await rejection(env.decrypt(bytes, { context: { a: "1" } })),
        FormatError,
        "ENVELOPE_BAD_FORMAT",
      );
      expect(kms.calls.unwrap).toBe(0);
    },
  );
});

describe("text forms", () => {
  const invalid: [string, string][] = [
    ["empty string", ""],
    ["prefix only, no colon", "ev1"],
    ["prefix only", "ev1:"],
    ["upper-case prefix", "EV1:AQEA"],
    ["other version prefix", "ev2:AQEA"],
    ["leading space", " ev1:AQEA"],
    ["padding", "ev1:AQE="],
    ["standard base64 alphabet", "ev1:AQ+/"],
    ["whitespace inside", "ev1:AQ EA"],
    ["newline at end", "ev1:AQEA\n"],
    ["NUL inside", "ev1:AQ\u0000A"],
    ["non-ASCII letters", "ev1:ÄÖÜß"],
    ["emoji", "ev1:😀😀"],
    ["length 1 mod 4", "ev1:AQEAA"],
    ["non-canonical trailing bits", "ev1:AR"],
    ["JSON", '{"ev1":"AQEA"}'],
    ["hex instead of base64url", "ev1:0101"],
  ];

  it.each(invalid)("%s → FormatError", async (_, text) => {
    const { env, kms } = await sample();
    // fromText alone may accept well-formed base64url ("ev1:", "ev1:0101"): the binary
    // decoder then refuses the bytes.
    try {
      decodeEnvelope(fromText(text));
      expect.unreachable("decoded");
    } catch (error) {
      expectEnvelopeError(error, FormatError, FORMAT_CODES);
    }
    expectEnvelopeError(await rejection(env.decrypt(text)), FormatError, FORMAT_CODES);
    expectEnvelopeError(
      thrown(() => inspectEnvelope(text)),
      FormatError,
      FORMAT_CODES,
    );
    expect(kms.calls.unwrap).toBe(0);
  });

  it("property: arbitrary strings only ever produce a FormatError", async () => {
    const { env } = await sample();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.boolean(),
        async (s, prefixed) => {
          const text = prefixed ? `ev1:${s}` : s;
          expectEnvelopeError(await rejection(env.decrypt(text)), FormatError, FORMAT_CODES);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("very long strings fail fast, with memory proportional to the input", async () => {
    const { env } = await sample();
    const n = 8 * MiB;
    const longs = [
      `ev1:${"A".repeat(n)}`, // decodes to zero bytes: version 0
      `ev1:${"!".repeat(n)}`, // alphabet violation
      `ev1:${"A".repeat(n - 1)}`, // length 1 mod 4
      "x".repeat(n), // no prefix
      `ev1:${toText(craft({ ciphertextLength: 2 ** 30 - 16 })).slice(4)}${"A".repeat(4 * 1024)}`,
    ];
    for (const text of longs) {
      const started = performance.now();
      const before = process.memoryUsage().arrayBuffers;
      expectEnvelopeError(await rejection(env.decrypt(text)), FormatError, FORMAT_CODES);
      // Decoding base64 needs at most ~3/4 of the input; allow the input size itself.
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(text.length + MiB);
      // A hang guard, not a benchmark: linear work on 8 MiB takes milliseconds.
      expect(performance.now() - started).toBeLessThan(5000);
    }
  });
});

describe("wrong input types", () => {
  const values: [string, unknown][] = [
    ["null", null],
    ["undefined", undefined],
    ["number", 42],
    ["plain object", { version: 1 }],
    ["array of bytes", [1, 1, 0]],
    ["ArrayBuffer", new ArrayBuffer(8)],
    ["DataView", new DataView(new ArrayBuffer(8))],
  ];

  it.each(values)("decrypt(%s) → ConfigError ENVELOPE_BAD_INPUT", async (_, value) => {
    const { env } = await sample();
    const error = await rejection(env.decrypt(value as Uint8Array));
    expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_INPUT");
    expectEnvelopeError(
      thrown(() => inspectEnvelope(value as Uint8Array)),
      ConfigError,
      "ENVELOPE_BAD_INPUT",
    );
  });

  it.each(values)("decodeEnvelope(%s) → FormatError", (_, value) => {
    expectEnvelopeError(
      thrown(() => decodeEnvelope(value as Uint8Array)),
      FormatError,
      "ENVELOPE_BAD_FORMAT",
    );
  });
});
