import { randomBytes } from "node:crypto";
import { format, inspect } from "node:util";
import {
  type AuditEvent,
  configFromEnv,
  createEnvelope,
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  encodeContext,
  encodeEnvelope,
  localAesProvider,
  type WrappedKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { countingProvider } from "./support/counting-provider.js";

async function rejection(promise: Promise<unknown>): Promise<EnvelopeError> {
  try {
    await promise;
  } catch (error) {
    expect(EnvelopeError.isInstance(error)).toBe(true);
    return error as EnvelopeError;
  }
  throw new Error("expected a rejection");
}

/** `sealed` with its entries replaced (the body and commitment untouched). */
function withEntries(sealed: Uint8Array, entries: WrappedKey[]): Buffer {
  return encodeEnvelope({ ...decodeEnvelope(sealed), entries });
}

describe("rewrap never drops the only good entry (issue 11, 4a)", () => {
  it("replaces a bogus entry already under the target instead of trusting it", async () => {
    const old = localAesProvider({ keys: randomBytes(32) });
    const target = localAesProvider({ keys: randomBytes(32) });
    const sealed = await new Envelope({ encrypt: old }).encrypt("precious");
    // An insider plants an entry under the target key that wraps some other data key.
    const bogus = await target.wrap(randomBytes(32), { context: {} });
    const planted = withEntries(sealed, [...decodeEnvelope(sealed).entries, bogus]);

    const moved = await new Envelope({ encrypt: target, decrypt: [old] }).rewrap(planted, {
      to: target,
    });
    const entries = decodeEnvelope(moved).entries;
    expect(entries.map((e) => e.keyRef)).toEqual([target.keyRef]);
    expect(Buffer.from(entries[0]!.wrapped).equals(Buffer.from(bogus.wrapped))).toBe(false);
    expect(await new Envelope({ encrypt: target }).decrypt(moved, { as: "text" })).toBe("precious");
  });

  it("fails, leaving the value as it was, when the only provable entry cannot be opened", async () => {
    const unreachable = localAesProvider({ keys: randomBytes(32) });
    const target = localAesProvider({ keys: randomBytes(32) });
    const sealed = await new Envelope({ encrypt: unreachable }).encrypt("precious");
    const bogus = await target.wrap(randomBytes(32), { context: {} });
    const planted = withEntries(sealed, [...decodeEnvelope(sealed).entries, bogus]);
    // This client holds only the target key: keeping the bogus entry and dropping the
    // other would leave a value nobody can open.
    const error = await rejection(
      new Envelope({ encrypt: target }).rewrap(planted, { to: target }),
    );
    expect(error.code).toBe("ENVELOPE_COMMITMENT_MISMATCH");
    // With the key back, the value still opens: nothing was lost.
    expect(await new Envelope({ encrypt: unreachable }).decrypt(planted, { as: "text" })).toBe(
      "precious",
    );
  });

  it("checks the entry a native rewrap returns before the old entries are dropped", async () => {
    const master = randomBytes(32);
    const options = { masterKey: master, anyKeyRef: true, nativeRewrap: true } as const;
    const v1 = countingProvider({ keyRef: "v1", ...options });
    const v2 = countingProvider({ keyRef: "v2", ...options });
    const backup = localAesProvider({ keys: randomBytes(32) });
    const sealed = await new Envelope({ encrypt: [backup, v1] }).encrypt("precious");
    // The v1 entry is replaced by a valid wrap of another data key: the KMS rewraps it
    // faithfully, and the result opens to the wrong key.
    const bogus = await v1.wrap(randomBytes(32), { context: {} });
    const planted = withEntries(sealed, [decodeEnvelope(sealed).entries[0]!, bogus]);
    const events: AuditEvent[] = [];
    const env = new Envelope({
      encrypt: v2,
      decrypt: [v1, backup],
      onAudit: (e) => events.push(e),
    });
    const error = await rejection(env.rewrap(planted, { to: v2 }));
    expect(error.code).toBe("ENVELOPE_COMMITMENT_MISMATCH");
    expect(v2.calls.rewrap).toBe(1);
    expect(events.filter((e) => e.operation === "rewrap").at(-1)?.outcome).toBe("failure");
    // The backup entry still opens the untouched value.
    expect(await new Envelope({ encrypt: backup }).decrypt(planted, { as: "text" })).toBe(
      "precious",
    );
  });

  it("keeps a kept target entry that opens correctly, and costs no unwrap when nothing is dropped", async () => {
    const a = countingProvider();
    const b = countingProvider();
    const sealed = await new Envelope({ encrypt: [a, b] }).encrypt("x");
    const env = new Envelope({ encrypt: [a, b], cache: false });
    a.reset();
    b.reset();
    // Entries already exactly the targets: unchanged, nothing unwrapped.
    expect((await env.rewrap(sealed, { to: [a, b] })).equals(sealed)).toBe(true);
    expect(a.calls.unwrap + b.calls.unwrap).toBe(0);
    // Dropping b: a is kept only after it was proven (one unwrap), bytes unchanged.
    const onlyA = await env.rewrap(sealed, { to: a });
    expect(a.calls.unwrap).toBe(1);
    expect(Buffer.from(decodeEnvelope(onlyA).entries[0]!.wrapped)).toEqual(
      Buffer.from(decodeEnvelope(sealed).entries[0]!.wrapped),
    );
    expect(await new Envelope({ encrypt: a }).decrypt(onlyA, { as: "text" })).toBe("x");
  });
});

describe("rewrap verifyBody (issue 11, 4b)", () => {
  const key = localAesProvider({ keys: randomBytes(32) });
  const next = localAesProvider({ keys: randomBytes(32) });
  const context = { table: "users", column: "email", id: "1" };

  it("refuses a value whose body was altered, with the decrypt error; off by default", async () => {
    const env = new Envelope({ encrypt: next, decrypt: [key] });
    const sealed = await new Envelope({ encrypt: key }).encrypt("a@example.com", { context });
    const damaged = Buffer.from(sealed);
    damaged[damaged.length - 20]! ^= 1;
    const copy = Buffer.from(damaged);
    const error = await rejection(env.rewrap(damaged, { context, verifyBody: true }));
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(damaged.equals(copy)).toBe(true);
    // Compatibility: without the option the library carries the damage forward, as before.
    await expect(env.rewrap(damaged, { context })).resolves.toBeInstanceOf(Buffer);
  });

  it("refuses a value moved from another row (wrong context), text form too", async () => {
    const env = new Envelope({ encrypt: next, decrypt: [key] });
    const sealed = await new Envelope({ encrypt: key }).encrypt("a@example.com", {
      context,
      output: "text",
    });
    const error = await rejection(
      env.rewrap(sealed, { context: { ...context, id: "2" }, verifyBody: true }),
    );
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
    const moved = await env.rewrap(sealed, { context, verifyBody: true });
    expect(await env.decrypt(moved, { context, as: "text" })).toBe("a@example.com");
  });

  it("checks a stored context against the caller's", async () => {
    const writer = new Envelope({ encrypt: key, storeContext: true });
    const sealed = await writer.encrypt("s", { context });
    const env = new Envelope({ encrypt: next, decrypt: [key] });
    const error = await rejection(
      env.rewrap(sealed, { context: { ...context, id: "9" }, verifyBody: true }),
    );
    expect(error.code).toBe("ENVELOPE_CONTEXT_MISMATCH");
    await expect(env.rewrap(sealed, { verifyBody: true })).resolves.toBeInstanceOf(Buffer);
  });
});

describe("entry cap (issue 11, 5)", () => {
  async function planted16(kms: ReturnType<typeof countingProvider>) {
    const sealed = await new Envelope({ encrypt: kms }).encrypt("x");
    const entries: WrappedKey[] = [];
    for (let i = 0; i < 16; i++) entries.push(await kms.wrap(randomBytes(32), { context: {} }));
    return withEntries(sealed, entries);
  }

  it("16 planted entries cost no provider call: refused before any unwrap", async () => {
    const kms = countingProvider();
    const value = await planted16(kms);
    kms.reset();
    const env = new Envelope({ encrypt: kms, cache: false });
    const error = await rejection(env.decrypt(value));
    expect(error.code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    expect(error.message).toContain("maxEntriesTried");
    expect(kms.calls.unwrap).toBe(0);
    for (const attempt of [
      env.unwrapDataKey(value),
      env.rewrap(value, { to: countingProvider() }),
    ]) {
      expect((await rejection(attempt)).code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    }
    expect(kms.calls.unwrap).toBe(0);
  });

  it("a raised cap tries at most that many entries", async () => {
    const kms = countingProvider();
    const value = await planted16(kms);
    kms.reset();
    const env = new Envelope({ encrypt: kms, cache: false, maxEntriesTried: 16 });
    await rejection(env.decrypt(value));
    expect(kms.calls.unwrap).toBe(16);
  });

  it("values this client writes stay readable: the default covers its encrypt keys", async () => {
    const keys = [1, 2, 3, 4, 5].map(() => localAesProvider({ keys: randomBytes(32) }));
    const env = new Envelope({ encrypt: keys });
    expect(await env.decrypt(await env.encrypt("five"), { as: "text" })).toBe("five");
    const three = new Envelope({ encrypt: keys[0]!, decrypt: keys.slice(1) });
    expect((await rejection(three.decrypt(await env.encrypt("five")))).code).toBe(
      "ENVELOPE_LIMIT_EXCEEDED",
    );
  });

  it("is configurable from config and env, and validated", async () => {
    expect(
      configFromEnv({ ENVELOPE_ENCRYPT_KEYS: "local-aes://env/K", ENVELOPE_MAX_ENTRIES_TRIED: "5" })
        .maxEntriesTried,
    ).toBe(5);
    const env = { K: randomBytes(32).toString("hex") };
    await expect(
      createEnvelope({ encrypt: "local-aes://env/K", maxEntriesTried: 0 }, env),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    await expect(
      createEnvelope({ encrypt: "local-aes://env/K", maxEntriesTried: 2 }, env),
    ).resolves.toBeInstanceOf(Envelope);
  });
});

describe("context read once (issue 11, 7)", () => {
  it("a getter that changes between reads is read once: sealed bytes match what was read", async () => {
    let reads = 0;
    const values = ["short", "a much longer value than the first one"];
    const context = {
      table: "users",
      get id() {
        return values[reads++ % 2]!;
      },
    } as EncryptionContext;
    const env = new Envelope({
      encrypt: localAesProvider({ keys: randomBytes(32) }),
      storeContext: true,
    });
    const sealed = await env.encrypt("x", { context });
    expect(reads).toBe(1);
    // The stored context is exactly the snapshot: no stale bytes past the first value.
    expect(env.inspect(sealed).context).toEqual({ table: "users", id: "short" });
    expect(encodeContext({ table: "users", id: "short" }).length).toBeGreaterThan(0);
    reads = 0;
    const canonical = encodeContext(context);
    expect(reads).toBe(1);
    expect(canonical.equals(encodeContext({ table: "users", id: "short" }))).toBe(true);
  });

  it.each([
    ["inherited properties", Object.create({ a: "1" })],
    // Its prototype's own prototype is null, like another realm's Object.prototype.
    [
      "properties inherited from a null-prototype object",
      Object.create(Object.create(null, { a: { value: "1", enumerable: true } })),
    ],
    [
      "a class instance",
      new (class Row {
        table = "users";
      })(),
    ],
  ])("%s is ENVELOPE_BAD_INPUT, not the empty context", async (_name, context) => {
    const env = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    for (const attempt of [
      env.encrypt("x", { context }),
      env.generateDataKey({ context }),
      env.decrypt(await env.encrypt("x"), { context }),
      env.rewrap(await env.encrypt("x"), { context }),
    ]) {
      expect((await rejection(attempt)).code).toBe("ENVELOPE_BAD_INPUT");
    }
  });
});

describe("data-key materials print no key (issue 11, 12)", () => {
  function leaks(text: string, key: Buffer): boolean {
    const hex = key.toString("hex");
    const spaced = [...key.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const decimal = [...key.subarray(0, 6)].join(",");
    return (
      text.includes(hex) ||
      text.includes(spaced) ||
      text.includes(decimal) ||
      text.includes(key.toString("base64").slice(0, 20))
    );
  }

  it.each(["generateDataKey", "unwrapDataKey"] as const)("%s materials", async (which) => {
    const env = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const materials =
      which === "generateDataKey"
        ? await env.generateDataKey()
        : await env.unwrapDataKey(await env.encrypt("x"));
    const key = Buffer.from(materials.dataKey);
    expect(key.length).toBe(32);
    const surfaces = [
      inspect(materials),
      inspect(materials, { showHidden: true, depth: 10 }),
      format("%o", materials),
      format("%O", materials),
      format("%j", materials),
      JSON.stringify(materials),
      JSON.stringify({ materials }),
      String(Object.keys(materials)),
      JSON.stringify({ ...materials }),
    ];
    for (const text of surfaces) expect(leaks(text, key), text).toBe(false);
    expect(inspect(materials)).toContain("[redacted]");
    // Still usable.
    const sealed = env.encryptWithDataKey(materials, "y");
    expect((await env.decrypt(sealed)).toString()).toBe("y");
  });
});

describe("entry cap counts entries, not (entry, key) pairs", () => {
  it("two keys that both handle both entries of a multi-wrapped value stay within the default", async () => {
    const master = randomBytes(32);
    // Two providers of one KMS (discovery-like): each handles every entry of that KMS.
    const a = countingProvider({ keyRef: "a", masterKey: master, anyKeyRef: true });
    const b = countingProvider({ keyRef: "b", masterKey: master, anyKeyRef: true });
    const env = new Envelope({ encrypt: [a, b], cache: false });
    const sealed = await env.encrypt("two regions");
    expect((await env.decrypt(sealed)).toString()).toBe("two regions");
  });
});
