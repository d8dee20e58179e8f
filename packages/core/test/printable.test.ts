import { describe, expect, it } from "vitest";
import { MAX_PRINTABLE_LENGTH, printable } from "../src/format/printable.js";

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
