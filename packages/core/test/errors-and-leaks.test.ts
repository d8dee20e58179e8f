import { createHmac, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import {
  type AuditEvent,
  createEnvelope,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  envelopeFromEnv,
  type KeyProvider,
  localAesProvider,
  resolveKey,
  toText,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, outcome, rejection } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const CANARY = "CANARY-PLAINTEXT-7f3a";
// Known master keys: every encoding of them is searched for in everything we print.
const MASTER = Buffer.from(
  "6b3a9f0c2d7e41a8b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2",
  "hex",
);
const OTHER = Buffer.from(
  "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0",
  "hex",
);
// A known data key, handed out by a generateDataKey provider.
const DEK = Buffer.from("d1e2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f00", "hex");

/** Every text encoding of `bytes` an accidental print might use. */
function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  const b64 = b.toString("base64");
  return [
    b.toString("hex"),
    b.toString("hex").toUpperCase(),
    b64,
    b64.replace(/=+$/, ""),
    b.toString("base64url"),
  ];
}

/** Forbidden substrings: each encoding, and any 16-character window of it (partial leaks). */
function needles(secrets: Uint8Array[], texts: string[]): string[] {
  const out = new Set<string>(texts);
  for (const secret of secrets) {
    for (const e of encodings(secret)) {
      out.add(e);
      for (let i = 0; i + 16 <= e.length; i += 4) out.add(e.slice(i, i + 16));
    }
  }
  // The plaintext's own encodings (a Buffer printed as hex or base64).
  for (const e of encodings(Buffer.from(CANARY))) out.add(e);
  out.add(inspect(Buffer.from(CANARY)).slice(8, 40)); // "<Buffer 43 41 4e …" style
  return [...out];
}

/** Every way an object can end up in a log line. */
function renderings(value: unknown): string[] {
  const out = [
    String(value),
    inspect(value, { depth: 10, showHidden: false }),
    inspect(value, { depth: 10, showHidden: true }),
  ];
  try {
    out.push(JSON.stringify(value) ?? "");
  } catch {
    // circular: inspect covers it
  }
  if (value instanceof Error) {
    out.push(value.message, value.stack ?? "");
    let cause: unknown = value.cause;
    for (let depth = 0; cause !== undefined && depth < 5; depth++) {
      out.push(String(cause), inspect(cause, { depth: 10 }));
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
  return out;
}

function expectClean(value: unknown, forbidden: string[], label: string): void {
  for (const text of renderings(value)) {
    for (const needle of forbidden) {
      if (text.includes(needle)) {
        throw new Error(
          `${label} leaks a secret (${needle.slice(0, 6)}…) in: ${text.slice(0, 300)}`,
        );
      }
    }
  }
}

/** A local-aes provider that records every data key it wraps or unwraps (copies). */
function recording(inner: KeyProvider, seen: Uint8Array[]): KeyProvider {
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: async (dataKey, request) => {
      seen.push(Buffer.from(dataKey));
      return inner.wrap(dataKey, request);
    },
    unwrap: async (entry, request) => {
      const key = await inner.unwrap(entry, request);
      seen.push(Buffer.from(key));
      return key;
    },
  };
}

/** The per-message AES key (HKDF-SHA256 by hand): it must not leak either. */
function messageKey(dataKey: Uint8Array, messageId: Uint8Array): Buffer {
  const prk = createHmac("sha256", messageId).update(dataKey).digest();
  return createHmac("sha256", prk)
    .update(Buffer.concat([Buffer.from("envelope:v1:suite1:key+commitment"), Buffer.of(1)]))
    .digest();
}

const flip = (bytes: Buffer, at: number) => {
  const copy = Buffer.from(bytes);
  copy[at]! ^= 0x01;
  return copy;
};

describe("canary: no key material or plaintext in any error, object or event", () => {
  it("covers every error path we can reach", async () => {
    const seen: Uint8Array[] = [];
    const events: AuditEvent[] = [];
    const aes = localAesProvider({ keys: MASTER });
    const provider = recording(aes, seen);
    const kms = countingProvider({ generateDataKey: true, nextDataKey: () => DEK });
    const env = new Envelope({ encrypt: provider, decrypt: [kms], onAudit: (e) => events.push(e) });
    const context = { table: "users", column: "ssn", id: "42" };
    const sealed = await env.encrypt(CANARY, { context });
    const text = toText(sealed);
    const viaKms = await new Envelope({ encrypt: kms }).encrypt(CANARY, { context });
    expect(await env.decrypt(sealed, { context, as: "text" })).toBe(CANARY);
    const parts = decodeEnvelope(sealed);
    const wrappedAt = parts.entries[0]!.wrapped.byteOffset - sealed.byteOffset;
    const bodyAt = parts.body.byteOffset - sealed.byteOffset;

    const errors: [string, unknown][] = [];
    const collect = async (label: string, promise: Promise<unknown>) => {
      const result = await outcome(promise);
      expect(result.ok, `${label} should fail`).toBe(false);
      if (!result.ok) {
        expectEnvelopeError(result.error);
        errors.push([label, result.error]);
      }
    };

    await collect("wrong context", env.decrypt(sealed, { context: { ...context, id: "43" } }));
    await collect("no context", env.decrypt(sealed));
    await collect("tampered body", env.decrypt(flip(sealed, bodyAt + 2), { context }));
    await collect("tampered tag", env.decrypt(flip(sealed, sealed.length - 1), { context }));
    await collect("tampered wrapped key", env.decrypt(flip(sealed, wrappedAt + 5), { context }));
    await collect("tampered commitment", env.decrypt(flip(sealed, 40), { context }));
    await collect("tampered message id", env.decrypt(flip(sealed, 4), { context }));
    await collect("truncated", env.decrypt(sealed.subarray(0, sealed.length - 3), { context }));
    await collect("truncated text", env.decrypt(text.slice(0, -3), { context }));
    await collect(
      "wrong key",
      new Envelope({ encrypt: localAesProvider({ keys: OTHER }) }).decrypt(sealed, { context }),
    );
    await collect("kms envelope, wrong context", env.decrypt(viaKms, { context: {} }));
    const binary = await env.encrypt(Buffer.concat([Buffer.from(CANARY), Buffer.of(0xff, 0xfe)]));
    await collect("not UTF-8 as text", env.decrypt(binary, { as: "text" }));
    await collect(
      "bad context value",
      env.encrypt(CANARY, { context: { id: 42 as unknown as string } }),
    );
    await collect(
      "context value too long",
      env.encrypt(CANARY, { context: { id: CANARY.repeat(500) } }),
    );
    await collect("rewrap to nothing", env.rewrap(sealed, { to: [] }));
    await collect(
      "rewrap with wrong key",
      new Envelope({ encrypt: localAesProvider({ keys: OTHER }) }).rewrap(sealed, { context }),
    );

    // A provider failing with an ordinary error (nothing secret in it).
    const failing: KeyProvider = {
      ...aes,
      unwrap: async () => Promise.reject(new Error("connection reset by peer")),
    };
    await collect(
      "provider throws",
      new Envelope({ encrypt: failing, cache: false }).decrypt(sealed, { context }),
    );
    // A provider that returns the wrong number of bytes (part of a real data key).
    const short: KeyProvider = {
      ...aes,
      unwrap: async (e, r) => (await aes.unwrap(e, r)).subarray(0, 31),
    };
    await collect(
      "short data key",
      new Envelope({ encrypt: short, cache: false }).decrypt(sealed, { context }),
    );
    const generateShort = countingProvider({
      generateDataKey: true,
      nextDataKey: () => DEK.subarray(0, 31),
    });
    await collect("short generated key", new Envelope({ encrypt: generateShort }).encrypt(CANARY));

    // Configuration mistakes that put the key where it does not belong.
    const hex = MASTER.toString("hex");
    const b64 = MASTER.toString("base64");
    const env0 = { GOOD: hex, BAD: `${hex.slice(0, 63)}`, BAD64: `${b64.slice(0, 40)}!!!=` };
    await collect(
      "key in URI query (env)",
      createEnvelope({ encrypt: `local-aes://env/MISSING?key=${hex}` }, env0),
    );
    await collect(
      "key in URI query (file)",
      createEnvelope({ encrypt: `local-aes:///nonexistent/dir/key?key=${hex}` }, env0),
    );
    await collect(
      "key in URI fragment",
      createEnvelope({ encrypt: `local-aes:///nonexistent/key#${b64}` }, env0),
    );
    await collect(
      "key in unknown-scheme URI",
      createEnvelope({ encrypt: `gcp-kms://host/?token=${hex}` }, env0),
    );
    await collect(
      "key in userinfo",
      createEnvelope({ encrypt: `nope-kms://${hex}@host/key` }, env0),
    );
    await collect("raw key instead of URI", createEnvelope({ encrypt: hex }, env0));
    await collect("raw base64 key instead of URI", createEnvelope({ encrypt: [b64] }, env0));
    await collect("near-miss hex key", createEnvelope({ encrypt: "local-aes://env/BAD" }, env0));
    await collect(
      "near-miss base64 key",
      createEnvelope({ encrypt: "local-aes://env/BAD64" }, env0),
    );
    await collect(
      "raw key in ENVELOPE_ENCRYPT_KEYS",
      envelopeFromEnv({ ENVELOPE_ENCRYPT_KEYS: hex }),
    );
    await collect(
      "resolveKey with key in config object",
      resolveKey({ provider: "local-aes", keys: `${hex}00` }),
    );
    await collect(
      "unknown config field holding a key",
      createEnvelope({ encrypt: "local-aes://env/GOOD", key: hex } as never, env0),
    );

    expect(errors.length).toBeGreaterThanOrEqual(30);
    // Every data key the providers saw, and each message's derived AES key.
    const dataKeys = [...seen, DEK, ...kms.generated];
    const messageKeys = dataKeys.flatMap((k) => [
      messageKey(k, parts.messageId),
      messageKey(k, decodeEnvelope(viaKms).messageId),
    ]);
    const forbidden = needles(
      [MASTER, OTHER, ...dataKeys, ...messageKeys],
      [CANARY, text.slice(4, 60)],
    );
    const leaks: string[] = [];
    for (const [label, error] of errors) {
      try {
        expectClean(error, forbidden, `error "${label}"`);
      } catch (leak) {
        leaks.push((leak as Error).message);
      }
    }
    expect(leaks).toEqual([]);

    // Objects users print: the client, providers, stats, audit events.
    const objects: [string, unknown][] = [
      ["client", env],
      ["local-aes provider", aes],
      ["counting provider", kms],
      ["cache stats", env.cacheStats()],
      ["describe", env.describe()],
      ["inspect", env.inspect(sealed)],
      ["audit events", events],
    ];
    for (const [label, value] of objects) expectClean(value, forbidden, label);
    expect(events.length).toBeGreaterThan(5);
  });

  it("the provider that made the envelope shows only ids", () => {
    const provider = localAesProvider({ keys: [MASTER, OTHER] });
    const forbidden = needles([MASTER, OTHER], []);
    expectClean(provider, forbidden, "provider");
    expect(JSON.stringify(provider)).toContain(provider.keyRef);
    expect(inspect(provider)).toContain(provider.keyRef);
  });

  it("the client holding cached keys and reusable data keys shows only ids", async () => {
    const seen: Uint8Array[] = [];
    const env = new Envelope({
      encrypt: recording(localAesProvider({ keys: MASTER }), seen),
      dataKeyReuse: {},
    });
    const sealed = await env.encrypt(CANARY);
    await env.decrypt(sealed);
    await env.decrypt(sealed);
    const forbidden = needles([MASTER, ...seen], [CANARY]);
    expectClean(env, forbidden, "client");
    expectClean(Object.assign({}, env), forbidden, "client spread");
    expect(JSON.parse(JSON.stringify(env))).toEqual(env.describe());
  });

  it("EnvelopeError.toJSON carries name, code, message and details, never the cause", () => {
    const cause = new Error(`secret ${MASTER.toString("hex")}`);
    const error = new EnvelopeError("ENVELOPE_KMS_ERROR", "KMS failed.", {
      cause,
      details: { provider: "x" },
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: "EnvelopeError",
      code: "ENVELOPE_KMS_ERROR",
      message: "KMS failed.",
      details: { provider: "x" },
    });
  });
});

describe("audit events", () => {
  const setup = (options: { hook?: (e: AuditEvent) => void } = {}) => {
    const events: AuditEvent[] = [];
    const a = localAesProvider({ keys: randomBytes(32) });
    const b = localAesProvider({ keys: randomBytes(32) });
    const env = new Envelope({
      encrypt: a,
      decrypt: [b],
      onAudit: (e) => {
        events.push(e);
        options.hook?.(e);
      },
    });
    return { events, a, b, env };
  };
  const shape = (e: AuditEvent) => [e.operation, e.provider, e.keyRef, e.outcome];

  it("one event per operation, with provider, key ref, cache hit and duration", async () => {
    const { events, a, b, env } = setup();
    const sealed = await env.encrypt("x", { context: { id: "1" } });
    expect(events.map(shape)).toEqual([
      ["wrap", "local-aes", a.keyRef, "success"],
      ["encrypt", "local-aes", a.keyRef, "success"],
    ]);
    expect(events[1]!.dataKeyReused).toBe(false);
    events.length = 0;

    await env.decrypt(sealed, { context: { id: "1" } });
    expect(events.map(shape)).toEqual([
      ["unwrap", "local-aes", a.keyRef, "success"],
      ["decrypt", "local-aes", a.keyRef, "success"],
    ]);
    expect(events.map((e) => e.cacheHit)).toEqual([false, false]);
    events.length = 0;

    await env.decrypt(sealed, { context: { id: "1" } });
    expect(events.map(shape)).toEqual([["decrypt", "local-aes", a.keyRef, "success"]]);
    expect(events[0]!.cacheHit).toBe(true);
    events.length = 0;

    // The data key is still in the unwrap cache from the decrypt above: no unwrap event.
    await env.rewrap(sealed, { to: b, context: { id: "1" } });
    expect(events.map(shape)).toEqual([
      ["wrap", "local-aes", b.keyRef, "success"],
      ["rewrap", "local-aes", b.keyRef, "success"],
    ]);
    expect(events[1]!.native).toBe(false);

    for (const e of events) {
      expect(typeof e.durationMs).toBe("number");
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(Object.isFrozen(e)).toBe(true);
    }
  });

  it("a decrypt event names the key that actually opened the value", async () => {
    // After rotation the provider's current key is the new one; old values are opened
    // with the old key, and the audit trail must say so.
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const old = await new Envelope({ encrypt: localAesProvider({ keys: oldKey }) }).encrypt("old");
    const events: AuditEvent[] = [];
    const ring = localAesProvider({ keys: [newKey, oldKey] });
    const env = new Envelope({ encrypt: ring, onAudit: (e) => events.push(e) });
    await env.decrypt(old);
    await env.decrypt(old);
    const oldRef = localAesProvider({ keys: oldKey }).keyRef;
    expect(events.map((e) => [e.operation, e.keyRef, e.cacheHit])).toEqual([
      ["unwrap", oldRef, false],
      ["decrypt", oldRef, false],
      ["decrypt", oldRef, true],
    ]);
  });

  it("failures are audited with their error code", async () => {
    const { events, env } = setup();
    const sealed = await env.encrypt("x", { context: { id: "1" } });
    events.length = 0;
    await rejection(env.decrypt(sealed, { context: { id: "2" } }));
    const last = events.at(-1)!;
    expect(last).toMatchObject({
      operation: "decrypt",
      outcome: "failure",
      errorCode: "ENVELOPE_DECRYPT_FAILED",
    });
    events.length = 0;
    await rejection(env.decrypt(Buffer.from([1, 1, 0])));
    expect(events).toEqual([
      expect.objectContaining({
        operation: "decrypt",
        outcome: "failure",
        errorCode: "ENVELOPE_BAD_FORMAT",
        provider: "none",
      }),
    ]);
    events.length = 0;
    const failing = {
      ...localAesProvider({ keys: randomBytes(32) }),
      wrap: async () => Promise.reject(new Error("down")),
    };
    const env2 = new Envelope({ encrypt: failing, onAudit: (e) => events.push(e) });
    await rejection(env2.encrypt("x"));
    expect(events.map((e) => [e.operation, e.outcome, e.errorCode])).toEqual([
      ["wrap", "failure", "ENVELOPE_KMS_ERROR"],
      ["encrypt", "failure", "ENVELOPE_KMS_ERROR"],
    ]);
  });

  it("a throwing audit hook does not break encrypt, decrypt or rewrap", async () => {
    let calls = 0;
    const { env, b } = setup({
      hook: () => {
        calls++;
        throw new Error("audit sink down");
      },
    });
    const sealed = await env.encrypt("still works", { output: "text" });
    expect(await env.decrypt(sealed, { as: "text" })).toBe("still works");
    const moved = await env.rewrap(sealed, { to: b });
    expect(await env.decrypt(moved, { as: "text" })).toBe("still works");
    // And failures keep their own error, not the hook's.
    const error = await rejection(env.decrypt(sealed, { context: { x: "y" } }));
    expectEnvelopeError(error, undefined, "ENVELOPE_DECRYPT_FAILED");
    expect(calls).toBeGreaterThan(5);
  });
});
