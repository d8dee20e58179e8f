import { randomBytes } from "node:crypto";
import {
  createEnvelope,
  DecryptionError,
  decodeEnvelope,
  Envelope,
  encodeContext,
  envelopeFromEnv,
  FormatError,
  inspectEnvelope,
  localAesProvider,
  toText,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, rejection } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const aes = localAesProvider({ keys: randomBytes(32) });
const context = { table: "users", column: "email", id: "42", note: "ünïcödé 😀" };

describe("storeContext: true", () => {
  const env = new Envelope({ encrypt: aes, storeContext: true });

  it("decrypts without the caller giving the context", async () => {
    const sealed = await env.encrypt("alice@example.com", { context });
    expect(await env.decrypt(sealed, { as: "text" })).toBe("alice@example.com");
    const text = await env.encrypt("bob@example.com", { context, output: "text" });
    expect(await env.decrypt(text, { as: "text" })).toBe("bob@example.com");
  });

  it("accepts the same context given again, in any key order", async () => {
    const sealed = await env.encrypt("x", { context });
    const reordered = Object.fromEntries(Object.entries(context).reverse());
    expect(await env.decrypt(sealed, { context: reordered, as: "text" })).toBe("x");
  });

  it.each([
    ["another id", { ...context, id: "43" }],
    ["a key added", { ...context, extra: "1" }],
    ["a key removed", { table: "users", column: "email", id: "42" }],
    ["empty", {}],
  ])("refuses a different context (%s) with ENVELOPE_CONTEXT_MISMATCH", async (_, other) => {
    const sealed = await env.encrypt("x", { context });
    const error = await rejection(env.decrypt(sealed, { context: other }));
    const e = expectEnvelopeError(error, DecryptionError, "ENVELOPE_CONTEXT_MISMATCH");
    expect(e.message).not.toContain("42");
  });

  it("the mismatch is found before any key is unwrapped", async () => {
    const kms = countingProvider();
    const client = new Envelope({ encrypt: kms, storeContext: true });
    const sealed = await client.encrypt("x", { context });
    await rejection(client.decrypt(sealed, { context: { id: "other" } }));
    expect(kms.calls.unwrap).toBe(0);
  });

  it("inspectEnvelope shows the stored context; without storeContext it shows none", async () => {
    const sealed = await env.encrypt("x", { context });
    const info = inspectEnvelope(sealed);
    expect(info.contextStored).toBe(true);
    expect(info.context).toEqual(context);
    expect(env.inspect(toText(sealed))).toMatchObject({
      form: "text",
      contextStored: true,
      context,
    });
    const plain = await new Envelope({ encrypt: aes }).encrypt("x", { context });
    const plainInfo = inspectEnvelope(plain);
    expect(plainInfo.contextStored).toBe(false);
    expect(plainInfo.context).toBeUndefined();
    expect(plain.length).toBeLessThan(sealed.length);
  });

  it("stores the canonical encoding, and an empty context too", async () => {
    const sealed = await env.encrypt("x", { context });
    expect(Buffer.from(decodeEnvelope(sealed).storedContext!).equals(encodeContext(context))).toBe(
      true,
    );
    const empty = await env.encrypt("y");
    expect(inspectEnvelope(empty)).toMatchObject({ contextStored: true, context: {} });
    expect(await env.decrypt(empty, { as: "text" })).toBe("y");
    expectEnvelopeError(
      await rejection(env.decrypt(empty, { context: { a: "b" } })),
      DecryptionError,
      "ENVELOPE_CONTEXT_MISMATCH",
    );
  });

  it("a client without storeContext still opens values that carry their context", async () => {
    const sealed = await env.encrypt("x", { context });
    const reader = new Envelope({ encrypt: aes });
    expect(await reader.decrypt(sealed, { as: "text" })).toBe("x");
  });

  it("the stored context is authenticated: editing it (consistently) fails decryption", async () => {
    const sealed = await env.encrypt("x", { context: { id: "42" } });
    const stored = decodeEnvelope(sealed).storedContext!;
    const at = stored.byteOffset - sealed.byteOffset;
    const forged = Buffer.from(sealed);
    // "42" → "43": still a canonical, well-formed context, but not the one sealed.
    forged[at + stored.length - 1] = "3".charCodeAt(0);
    expect(inspectEnvelope(forged).context).toEqual({ id: "43" });
    expectEnvelopeError(
      await rejection(env.decrypt(forged)),
      DecryptionError,
      "ENVELOPE_DECRYPT_FAILED",
    );
    expectEnvelopeError(
      await rejection(env.decrypt(forged, { context: { id: "43" } })),
      DecryptionError,
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it("a context that is not canonical is a FormatError", async () => {
    const sealed = await env.encrypt("x", { context: { a: "1", b: "2" } });
    const stored = decodeEnvelope(sealed).storedContext!;
    const at = stored.byteOffset - sealed.byteOffset;
    const swapped = Buffer.from(sealed);
    // Keys "a" and "b" swapped: same pairs, wrong order.
    swapped[at + 4] = "b".charCodeAt(0);
    swapped[at + 4 + 1 + 2 + 1 + 2] = "a".charCodeAt(0);
    expectEnvelopeError(await rejection(env.decrypt(swapped)), FormatError, "ENVELOPE_BAD_FORMAT");
  });

  it("rewrap keeps the stored context and the body", async () => {
    const b = localAesProvider({ keys: randomBytes(32) });
    const sealed = await env.encrypt("x", { context });
    const moved = await new Envelope({ encrypt: aes }).rewrap(sealed, { to: b });
    expect(inspectEnvelope(moved)).toMatchObject({ contextStored: true, context });
    expect(Buffer.from(decodeEnvelope(moved).body).equals(decodeEnvelope(sealed).body)).toBe(true);
    expect(await new Envelope({ encrypt: b }).decrypt(moved, { as: "text" })).toBe("x");
    const error = await rejection(
      new Envelope({ encrypt: aes }).rewrap(sealed, { to: b, context: { id: "1" } }),
    );
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_CONTEXT_MISMATCH");
  });

  it("is set by config and by ENVELOPE_STORE_CONTEXT", async () => {
    const key = randomBytes(32).toString("hex");
    const fromConfig = await createEnvelope(
      { encrypt: "local-aes://env/K", storeContext: true },
      { K: key },
    );
    expect(inspectEnvelope(await fromConfig.encrypt("x", { context })).contextStored).toBe(true);
    const off = await createEnvelope({ encrypt: "local-aes://env/K" }, { K: key });
    expect(inspectEnvelope(await off.encrypt("x", { context })).contextStored).toBe(false);
    const vars = { K: key, ENVELOPE_ENCRYPT_KEYS: "local-aes://env/K" };
    for (const [value, stored] of [
      ["true", true],
      ["false", false],
      ["", false],
    ] as const) {
      const client = await envelopeFromEnv({ ...vars, ENVELOPE_STORE_CONTEXT: value });
      expect(inspectEnvelope(await client.encrypt("x", { context })).contextStored).toBe(stored);
    }
  });
});
