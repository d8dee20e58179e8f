import { randomBytes } from "node:crypto";
import {
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  type WrappedKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { countingProvider, isZero } from "./support/counting-provider.js";

// Issue 12, item 8: a native rewrap with body verification costs 2 KMS calls, not 3. The
// proof that the new entry opens to the value's data key (one unwrap) also yields the key
// that authenticates the body, so the old entry is never unwrapped.

const context = { table: "users", column: "email", id: "7" };

/** Two key versions of one simulated KMS (one master key; only the label differs). */
function kms() {
  const master = randomBytes(32);
  const options = { masterKey: master, anyKeyRef: true, nativeRewrap: true } as const;
  const v1 = countingProvider({ keyRef: "v1", ...options });
  const v2 = countingProvider({ keyRef: "v2", ...options });
  return { v1, v2 };
}

async function rejection(promise: Promise<unknown>): Promise<EnvelopeError> {
  try {
    await promise;
  } catch (error) {
    expect(EnvelopeError.isInstance(error)).toBe(true);
    return error as EnvelopeError;
  }
  throw new Error("expected a rejection");
}

const calls = (...ps: ReturnType<typeof countingProvider>[]) =>
  ps.reduce(
    (n, p) => n + p.calls.unwrap + p.calls.rewrap + p.calls.wrap + p.calls.generateDataKey,
    0,
  );

describe("native rewrap with verifyBody", () => {
  it("costs one native rewrap and one unwrap (of the new entry), and keeps the body", async () => {
    const { v1, v2 } = kms();
    const sealed = await new Envelope({ encrypt: v1 }).encrypt("a@example.com", { context });
    v1.reset();
    const env = new Envelope({ encrypt: v2, decrypt: [v1], cache: false });
    const moved = await env.rewrap(sealed, { to: v2, context, verifyBody: true });
    expect(v2.calls.rewrap).toBe(1);
    expect(v1.calls.unwrap + v2.calls.unwrap).toBe(1);
    expect(calls(v1, v2)).toBe(2);
    // The unwrapped data key was the new entry's, and it was zeroed after use.
    expect(v2.unwrapped.length + v1.unwrapped.length).toBe(1);
    expect([...v1.unwrapped, ...v2.unwrapped].every(isZero)).toBe(true);
    const before = decodeEnvelope(sealed);
    const after = decodeEnvelope(moved);
    expect(after.entries.map((e) => e.keyRef)).toEqual(["v2"]);
    expect(Buffer.from(after.body).equals(Buffer.from(before.body))).toBe(true);
    const reader = new Envelope({ encrypt: v2, cache: false });
    expect(await reader.decrypt(moved, { context, as: "text" })).toBe("a@example.com");
  });

  it("refuses a damaged body with the decrypt error and leaves the value as it was", async () => {
    const { v1, v2 } = kms();
    const sealed = await new Envelope({ encrypt: v1 }).encrypt("a@example.com", { context });
    const damaged = Buffer.from(sealed);
    damaged[damaged.length - 20]! ^= 1;
    const copy = Buffer.from(damaged);
    const env = new Envelope({ encrypt: v2, decrypt: [v1], cache: false });
    const error = await rejection(env.rewrap(damaged, { to: v2, context, verifyBody: true }));
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(damaged.equals(copy)).toBe(true);
  });

  it("refuses a value moved from another row (the context differs)", async () => {
    const { v1, v2 } = kms();
    const sealed = await new Envelope({ encrypt: v1 }).encrypt("a@example.com", { context });
    const env = new Envelope({ encrypt: v2, decrypt: [v1], cache: false });
    const error = await rejection(
      env.rewrap(sealed, { to: v2, context: { ...context, id: "8" }, verifyBody: true }),
    );
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("refuses a source entry that wraps another data key (commitment), before anything is kept", async () => {
    const { v1, v2 } = kms();
    const sealed = await new Envelope({ encrypt: v1 }).encrypt("a@example.com", { context });
    const bogus: WrappedKey = await v1.wrap(randomBytes(32), { context: {} });
    const planted = encodeEnvelope({ ...decodeEnvelope(sealed), entries: [bogus] });
    const env = new Envelope({ encrypt: v2, decrypt: [v1], cache: false });
    const error = await rejection(env.rewrap(planted, { to: v2, context, verifyBody: true }));
    expect(error.code).toBe("ENVELOPE_COMMITMENT_MISMATCH");
    expect(v2.calls.rewrap).toBe(1);
  });

  it("a second target wrapped here reuses the proven data key (no unwrap of the old entry)", async () => {
    const { v1, v2 } = kms();
    const backup = countingProvider();
    const sealed = await new Envelope({ encrypt: v1 }).encrypt("a@example.com", { context });
    v1.reset();
    const env = new Envelope({ encrypt: [v2, backup], decrypt: [v1], cache: false });
    const moved = await env.rewrap(sealed, { to: [v2, backup], context, verifyBody: true });
    expect(v2.calls.rewrap).toBe(1);
    expect(v1.calls.unwrap + v2.calls.unwrap).toBe(1);
    expect(backup.calls.wrap).toBe(1);
    const reader = new Envelope({ encrypt: backup, cache: false });
    expect(await reader.decrypt(moved, { context, as: "text" })).toBe("a@example.com");
  });
});
