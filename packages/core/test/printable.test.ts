import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_LENGTH } from "../src/errors.js";
import { MAX_PRINTABLE_LENGTH, printable } from "../src/format/printable.js";
import { Envelope, type KeyProvider, ProviderError } from "../src/index.js";

describe("printable", () => {
  it.each([
    ["plain", "arn:aws:kms:eu-west-1:1:key/abc", "arn:aws:kms:eu-west-1:1:key/abc"],
    ["newline", "a\nb", "a\\x0ab"],
    ["escape sequence", "\u001b[2J", "\\x1b[2J"],
    ["carriage return", "ok\rFAKE", "ok\\x0dFAKE"],
    ["C1 control", "a\u009bb", "a\\x9bb"],
    ["line separator", "a\u2028b", "a\\u2028b"],
    ["bidi override", "a\u202eb", "a\\u202eb"],
    ["DEL", "a\u007fb", "a\\x7fb"],
  ])("escapes %s", (_name, input, expected) => {
    expect(printable(input)).toBe(expected);
  });

  it("caps the length and says how much was cut", () => {
    const out = printable("k".repeat(5000));
    expect(out.startsWith("k".repeat(MAX_PRINTABLE_LENGTH))).toBe(true);
    expect(out).toContain("(+4800 chars)");
    expect(out.length).toBeLessThan(MAX_PRINTABLE_LENGTH + 20);
  });

  it("leaves no raw control character in any output", () => {
    let all = "";
    for (let c = 0; c < 0x2070; c++) all += String.fromCharCode(c);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking none survive
    expect(printable(all, all.length)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  });
});

describe("EnvelopeError escapes whatever was interpolated", () => {
  const hostile = "key\n\u001b[2J\u001b]0;owned\u0007\u202e";

  it("in the message and in string details, capped", () => {
    const error = new ProviderError(
      "ENVELOPE_UNWRAP_FAILED",
      `provider x could not unwrap under key "${hostile}"${"k".repeat(10_000)}`,
      { details: { keyRef: hostile, attempts: 2 } },
    );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking none survive
    const raw = /[\u0000-\u001f\u007f-\u009f\u202e]/;
    expect(error.message).not.toMatch(raw);
    expect(error.message).toContain("key\\x0a\\x1b[2J");
    expect(error.message.length).toBeLessThan(MAX_MESSAGE_LENGTH + 40);
    expect(String(error.details.keyRef)).not.toMatch(raw);
    expect(error.details.attempts).toBe(2);
    expect(JSON.stringify(error)).not.toContain("\\u001b");
  });

  it("through a decrypt: a provider that quotes the stored key reference", async () => {
    const quoting: KeyProvider = {
      id: "quoting",
      keyRef: "k1",
      handles: () => true,
      wrap: async () => ({ providerId: "quoting", keyRef: hostile, wrapped: Buffer.alloc(8, 1) }),
      unwrap: async (entry) => {
        throw new ProviderError(
          "ENVELOPE_UNWRAP_FAILED",
          `quoting: cannot unwrap under ${entry.keyRef}`,
          { details: { keyRef: entry.keyRef } },
        );
      },
    };
    const envelope = new Envelope({ encrypt: quoting, cache: false });
    const sealed = await envelope.encrypt("x");
    const error = await envelope.decrypt(sealed).catch((e: Error) => e);
    expect((error as ProviderError).code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect((error as Error).message).toContain("\\x0a\\x1b[2J");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking none survive
    expect((error as Error).message).not.toMatch(/[\u0000-\u001f\u202e]/);
  });
});
