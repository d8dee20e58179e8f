import { inspect } from "node:util";
import {
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  ProviderError,
} from "@envelope/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness, staticCredential } from "./helpers.js";

let h: Harness;
let counter = 0;

beforeAll(async () => {
  // 429s here say Retry-After: 0, so these tests check the bounded backoff itself; a
  // Retry-After that is waited for, or is longer than maxDelayMs, is in retry-after.test.ts.
  h = await startHarness({ retryAfterSeconds: 0 });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  Object.assign(h.kv.faults, {
    latencyMs: 0,
    throttleEvery: 0,
    failEvery: 0,
    dropEvery: 0,
    hang: false,
  });
  h.kv.resetCalls();
});

/** A fresh key, one envelope sealed under it, and a no-cache reader. */
async function sealed(extra: Parameters<Harness["provider"]>[1] = {}) {
  const name = `fault-${++counter}`;
  const key = await h.admin.createRsaKey(name);
  const provider = h.provider(`${h.kv.url}/keys/${name}`, extra);
  const envelope = new Envelope({ encrypt: provider, cache: false });
  const value = await envelope.encrypt("pii");
  h.kv.resetCalls();
  return { name, key, provider, envelope, value };
}

/** Every value reachable from `root` through own properties (cycles cut). */
function reachable(root: unknown): unknown[] {
  const seen = new Set<unknown>();
  const out: unknown[] = [];
  const visit = (v: unknown, depth: number) => {
    out.push(v);
    if (typeof v !== "object" || v === null || seen.has(v) || depth > 12) return;
    seen.add(v);
    if (v instanceof Uint8Array) return;
    for (const key of Reflect.ownKeys(v)) {
      try {
        visit((v as Record<PropertyKey, unknown>)[key], depth + 1);
      } catch {
        // getters that throw are not data
      }
    }
  };
  visit(root, 0);
  return out;
}

function leaks(value: unknown, secret: Buffer): boolean {
  if (typeof value === "string")
    return value.includes(secret.toString("base64url")) || value.includes(secret.toString("hex"));
  if (value instanceof Uint8Array) return Buffer.from(value).includes(secret);
  return false;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable("should have failed"),
    (e: unknown) => e as ProviderError,
  );

describe("transient faults are retried with a bound, then typed", () => {
  it("429 on every attempt: ENVELOPE_KMS_THROTTLED after exactly `attempts` requests", async () => {
    const { envelope, value, key } = await sealed();
    h.kv.faults.throttleEvery = 1;
    const error = await failure(envelope.decrypt(value));
    expect(ProviderError.isInstance(error)).toBe(true);
    expect(error.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(error.details).toMatchObject({
      provider: "azure-kv",
      keyRef: key.id,
      operation: "unwrap",
      attempts: 3,
    });
    expect(error.message).toContain(`azure-kv unwrap for key "${key.id}"`);
    expect(error.message).toMatch(/429 Throttled/);
    expect(error.message).toMatch(/Gave up after 3 attempt/);
    expect(h.kv.calls.unwrapKey).toBe(3); // the SDK's own retries are off: no hidden multiplication
  });

  it("a single 429 is retried and the decrypt succeeds", async () => {
    const { envelope, value, name } = await sealed();
    await h.admin.getKey(name); // authenticated request #1 passes …
    h.kv.faults.throttleEvery = 2; // … so the unwrap (#2) is throttled and its retry (#3) is not
    expect((await envelope.decrypt(value)).toString()).toBe("pii");
    expect(h.kv.calls.unwrapKey).toBe(2);
  });

  it("5xx on every attempt: ENVELOPE_KMS_UNAVAILABLE, bounded", async () => {
    const { envelope, value } = await sealed({
      retry: { attempts: 2, baseDelayMs: 1, timeoutMs: 5_000 },
    });
    h.kv.faults.failEvery = 1;
    const error = await failure(envelope.decrypt(value));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(error.details.attempts).toBe(2);
    expect(h.kv.calls.unwrapKey).toBe(2);
  });

  it("a single 5xx is retried and the decrypt succeeds", async () => {
    const { envelope, value, name } = await sealed();
    await h.admin.getKey(name);
    h.kv.faults.failEvery = 2;
    expect((await envelope.decrypt(value)).toString()).toBe("pii");
    expect(h.kv.calls.unwrapKey).toBe(2);
  });

  it("dropped connections: ENVELOPE_KMS_UNAVAILABLE, bounded", async () => {
    const { envelope, value } = await sealed();
    h.kv.faults.dropEvery = 1;
    const error = await failure(envelope.decrypt(value));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(h.kv.calls.unwrapKey).toBe(3);
  });

  it("a hung vault hits the per-attempt timeout: ENVELOPE_KMS_TIMEOUT", async () => {
    const { envelope, value } = await sealed({
      retry: { attempts: 2, baseDelayMs: 1, timeoutMs: 300 },
    });
    h.kv.faults.hang = true;
    const started = Date.now();
    const error = await failure(envelope.decrypt(value));
    const took = Date.now() - started;
    expect(error.code).toBe("ENVELOPE_KMS_TIMEOUT");
    expect(error.message).toMatch(/timed out after 300 ms/);
    expect(h.kv.calls.unwrapKey).toBe(2);
    // Two 300 ms attempts; timers count from the event loop's cached clock, which a busy
    // loop leaves behind, so allow them to fire that much early by Date.now.
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(5_000);
  });

  it("while refreshing the key is throttled, the cached key keeps wrapping locally", async () => {
    const { envelope } = await sealed({ keyRefreshMs: 0 });
    h.kv.faults.throttleEvery = 1;
    await envelope.encrypt("still works");
    expect(h.kv.calls.getKey).toBe(3); // the refresh tried, bounded
    expect(h.kv.calls.wrapKey ?? 0).toBe(0);
  });
});

describe("permanent failures get their own typed errors, without retries", () => {
  it("a token the vault does not accept: ENVELOPE_KMS_ACCESS_DENIED", async () => {
    const { value, name } = await sealed();
    const bad = new Envelope({
      encrypt: h.provider(`${h.kv.url}/keys/${name}`, {
        credential: staticCredential("stolen-or-expired"),
      }),
    });
    const error = await failure(bad.decrypt(value));
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(error.message).toMatch(/rejected the bearer token .*401 Unauthorized/);
    expect(h.kv.calls.unwrapKey ?? 0).toBe(0);
    expect(h.kv.calls.unauthorized).toBeLessThanOrEqual(2); // one challenge round, no retry loop
  });

  it("a disabled key version: decrypt gives ENVELOPE_KEY_DISABLED; encrypt under it too", async () => {
    const { envelope, value, name, key } = await sealed();
    await h.admin.updateKeyProperties(name, key.properties.version!, { enabled: false });
    h.kv.resetCalls();
    const error = await failure(envelope.decrypt(value));
    expect(error.code).toBe("ENVELOPE_KEY_DISABLED");
    expect(error.message).toMatch(/Re-enable that key version/);
    expect(h.kv.calls.unwrapKey).toBe(1);

    const writer = new Envelope({ encrypt: h.provider(`${h.kv.url}/keys/${name}`) });
    expect((await failure(writer.encrypt("x"))).code).toBe("ENVELOPE_KEY_DISABLED");

    await h.admin.updateKeyProperties(name, key.properties.version!, { enabled: true });
    expect((await envelope.decrypt(value)).toString()).toBe("pii");
  });

  it("a key read that reports the version disabled (not the live service's 403): nothing is wrapped under it", async () => {
    // Found by a Key Vault server written apart from ours: it answered the get of a disabled
    // version with enabled: false, and the provider then sent the wrap to Key Vault, which
    // accepted it (public-key operations work on a disabled key): a value that cannot be
    // opened until the version is enabled again.
    const { name, key } = await sealed();
    await h.admin.updateKeyProperties(name, key.properties.version!, { enabled: false });
    h.kv.quirks.getDisabledKeys = true;
    try {
      for (const localWrap of [true, false]) {
        h.kv.resetCalls();
        const writer = new Envelope({
          encrypt: h.provider(`${h.kv.url}/keys/${name}`, { localWrap }),
        });
        const error = await failure(writer.encrypt("x"));
        expect(error.code).toBe("ENVELOPE_KEY_DISABLED");
        expect(error.message).toContain("nothing was wrapped");
        expect(h.kv.calls.wrapKey ?? 0).toBe(0);
      }
    } finally {
      h.kv.quirks.getDisabledKeys = false;
    }
  });

  it("a deleted key: ENVELOPE_KEY_NOT_FOUND on decrypt and on encrypt", async () => {
    const { envelope, value, name } = await sealed();
    const poller = await h.admin.beginDeleteKey(name, { intervalInMs: 10 });
    await poller.pollUntilDone();
    h.kv.resetCalls();
    const error = await failure(envelope.decrypt(value));
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toMatch(/KeyNotFound/);
    expect(h.kv.calls.unwrapKey).toBe(1);
    const writer = new Envelope({ encrypt: h.provider(`${h.kv.url}/keys/${name}`) });
    expect((await failure(writer.encrypt("x"))).code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });

  it("a context mismatch: ENVELOPE_DECRYPT_FAILED from the body's AAD (Key Vault takes no context), not retried", async () => {
    const { envelope } = await sealed();
    const context = { table: "users", column: "email", id: "42" };
    const value = await envelope.encrypt("pii", { context });
    h.kv.resetCalls();
    const error = await failure(envelope.decrypt(value, { context: { ...context, id: "43" } }));
    expect(EnvelopeError.isInstance(error)).toBe(true);
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
    // Distinct from the access, disabled and not-found codes above.
    expect([
      "ENVELOPE_KMS_ACCESS_DENIED",
      "ENVELOPE_KEY_DISABLED",
      "ENVELOPE_KEY_NOT_FOUND",
    ]).not.toContain(error.code);
    expect(h.kv.calls.unwrapKey).toBe(1); // Key Vault unwrapped once; the failure is not retried
    expect((await envelope.decrypt(value, { context })).toString()).toBe("pii");
  });

  it("a version that never existed: ENVELOPE_KEY_NOT_FOUND", async () => {
    const { provider, value } = await sealed();
    const [entry] = decodeEnvelope(value).entries;
    const keyRef = entry!.keyRef.replace(/[0-9a-f]{32}$/, "0".repeat(32));
    const error = await failure(provider.unwrap({ ...entry!, keyRef }, { context: {} }));
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });

  it("a corrupted wrapped key: ENVELOPE_UNWRAP_FAILED from Key Vault; an unknown tag fails before any call", async () => {
    const { envelope, value } = await sealed();
    const parts = decodeEnvelope(value);
    const wrapped = Buffer.from(parts.entries[0]!.wrapped);
    wrapped[10]! ^= 0xff;
    const corrupted = encodeEnvelope({ ...parts, entries: [{ ...parts.entries[0]!, wrapped }] });
    expect((await failure(envelope.decrypt(corrupted))).code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(h.kv.calls.unwrapKey).toBe(1);

    h.kv.resetCalls();
    const untagged = Buffer.from(parts.entries[0]!.wrapped);
    untagged[0] = 0x7f;
    const unknown = encodeEnvelope({
      ...parts,
      entries: [{ ...parts.entries[0]!, wrapped: untagged }],
    });
    expect((await failure(envelope.decrypt(unknown))).code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(h.kv.calls.unwrapKey ?? 0).toBe(0);
  });

  it("a failed remote wrap never carries the data key in the error or its cause", async () => {
    const { provider } = await sealed({
      localWrap: false,
      retry: { attempts: 1, timeoutMs: 5_000 },
    });
    await provider.refreshKey();
    h.kv.faults.failEvery = 1;
    const dataKey = Buffer.alloc(32, 0xab);
    const error = await failure(provider.wrap(dataKey, { context: {} }));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    const printed = `${inspect(error, { depth: 20 })} ${JSON.stringify(error)} ${inspect(error.cause, { depth: 20 })}`;
    expect(printed).not.toContain(dataKey.toString("base64url"));
    expect(printed).not.toContain(dataKey.toString("hex"));
    // What a logger that walks every property would find (the SDK's RestError keeps the request body).
    expect(reachable(error).some((v) => leaks(v, dataKey))).toBe(false);
    expect(EnvelopeError.isInstance(error)).toBe(true);
  });
});
