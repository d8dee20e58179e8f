import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createEnvelope, Envelope, localAesProvider } from "@envelope/core";

describe("smoke", () => {
  it("round-trips and rewraps with local-aes", async () => {
    const a = localAesProvider({ keys: randomBytes(32) });
    const b = localAesProvider({ keys: randomBytes(32) });
    const env = new Envelope({ encrypt: a, decrypt: [b] });
    const ctx = { table: "users", column: "email", id: "1" };
    const sealed = await env.encrypt("hello", { context: ctx, output: "text" });
    expect(sealed.startsWith("ev1:")).toBe(true);
    expect(await env.decrypt(sealed, { context: ctx, as: "text" })).toBe("hello");
    await expect(env.decrypt(sealed, { context: { ...ctx, id: "2" } })).rejects.toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
    const moved = await env.rewrap(sealed, { to: b, context: ctx });
    const onlyB = new Envelope({ encrypt: b });
    expect(await onlyB.decrypt(moved, { context: ctx, as: "text" })).toBe("hello");
    expect(env.inspect(moved).entries[0]!.keyRef).toBe(b.keyRef);
  });
  it("builds from config URIs", async () => {
    const key = randomBytes(32).toString("hex");
    const env = await createEnvelope({ encrypt: "local-aes://env/K" }, { K: key });
    const sealed = await env.encrypt(new Uint8Array([1, 2, 3]));
    expect([...(await env.decrypt(sealed))]).toEqual([1, 2, 3]);
  });
});
