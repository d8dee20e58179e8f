import { constants } from "node:buffer";
import { randomBytes } from "node:crypto";
import { Envelope, EnvelopeError, fromText, localAesProvider, toText } from "@envelope/core";
import { describe, expect, it } from "vitest";

// Issue 11, item 9. Peak RSS figures are measured by scripts/decrypt-memory.mjs (see
// docs/PERFORMANCE.md); here the deterministic part: the text form's body is deciphered
// inside the buffer decoded from the text, so no second body-sized buffer is made.
describe("in-memory decrypt allocates one body-sized buffer", () => {
  const size = 8 * 1024 * 1024;
  const env = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }), cache: false });

  it("text form: the body is deciphered in the buffer decoded from the text", async () => {
    const plaintext = Buffer.alloc(size, 0x61);
    const sealed = await env.encrypt(plaintext, { output: "text" });
    const out = await env.decrypt(sealed);
    expect(out.equals(plaintext)).toBe(true);
    // The plaintext is a view behind the header inside the decoded envelope's memory; before
    // the fix it was a second, separate buffer of the body's size.
    expect(out.byteOffset).toBeGreaterThan(0);
    expect(out.buffer.byteLength).toBeLessThan(size + 4096);
  });

  it("text form: a tampered large value is still refused, and the output is never a caller's buffer", async () => {
    const sealed = await env.encrypt(Buffer.alloc(size, 0x62), { output: "text" });
    const at = sealed.length - 40;
    const tampered = `${sealed.slice(0, at)}${sealed[at] === "A" ? "B" : "A"}${sealed.slice(at + 1)}`;
    await expect(env.decrypt(tampered)).rejects.toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
    // A caller's own bytes (binary form, or fromText by hand) are never deciphered in place.
    const bytes = fromText(sealed);
    const copy = Buffer.from(bytes);
    expect((await env.decrypt(bytes)).length).toBe(size);
    expect(bytes.equals(copy)).toBe(true);
  });

  // Skipped on Bun: its strings hold 2^31-1 characters, so every envelope (a body of at
  // most 1 GiB) has a text form, and there is no too-large value to refuse.
  it.skipIf(constants.MAX_STRING_LENGTH > 2 ** 30)(
    "a value too large for the text form is a typed error, not ERR_STRING_TOO_LONG",
    () => {
      const huge = Buffer.allocUnsafe(403 * 1024 * 1024);
      let error: unknown;
      try {
        toText(huge);
      } catch (e) {
        error = e;
      }
      expect(EnvelopeError.isInstance(error)).toBe(true);
      expect((error as EnvelopeError).code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    },
  );
});
