import { randomBytes } from "node:crypto";
import { type AuditEvent, Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { ATTR, METRICS, OTHER_KEY_REF, UNTYPED_ERROR } from "../src/index.js";
import { aesProvider, failingProvider, otelHarness } from "./harness.js";

const context = { table: "users", column: "email", id: "42" };

describe("operation metrics (from the audit hook)", () => {
  it("counts encrypt, decrypt (cold and warm), unwrap and wrap by provider and key reference, with durations in seconds", async () => {
    const otel = otelHarness();
    const provider = aesProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    const sealed = await envelope.encrypt("alice@example.com", { context });
    await envelope.encrypt("bob@example.com", { context });
    envelope.clearCaches(); // the next decrypt must unwrap
    await envelope.decrypt(sealed, { context });
    await envelope.decrypt(sealed, { context });

    const key = {
      [ATTR.provider]: "local-aes",
      [ATTR.keyRef]: provider.keyRef,
      [ATTR.outcome]: "success",
    };
    const ops = (operation: string, extra = {}) =>
      otel.value(METRICS.operations, { ...key, [ATTR.operation]: operation, ...extra });
    expect(await ops("encrypt", { [ATTR.dataKeyReused]: false })).toBe(2);
    expect(await ops("wrap")).toBe(2);
    expect(await ops("decrypt", { [ATTR.cacheHit]: false })).toBe(1);
    expect(await ops("decrypt", { [ATTR.cacheHit]: true })).toBe(1);
    expect(await ops("unwrap")).toBe(1);

    const durations = await otel.points(METRICS.operationDuration);
    expect(durations.every((p) => p.unit === "s")).toBe(true);
    const total = durations.reduce((n, p) => n + p.value, 0);
    expect(total).toBe(7); // one duration per counted operation
    // Seconds, not milliseconds: seven local operations take far less than 7 s in all.
    const seconds = durations.reduce((n, p) => n + (p.sum ?? 0), 0);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(7);
  });

  it("labels failures with the error code, and rewrap with its target key", async () => {
    const otel = otelHarness();
    const oldKey = aesProvider();
    const newKey = aesProvider();
    const before = new Envelope(otel.telemetry.instrument({ encrypt: oldKey }));
    const sealed = await before.encrypt("x", { context });
    await expect(before.decrypt(sealed, { context: { ...context, id: "43" } })).rejects.toThrow();

    const after = new Envelope(otel.telemetry.instrument({ encrypt: newKey, decrypt: [oldKey] }));
    await after.rewrap(sealed, { context });

    const failures = await otel.points(METRICS.operations);
    const failed = failures.filter((p) => p.attributes[ATTR.outcome] === "failure");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.attributes[ATTR.operation]).toBe("decrypt");
    expect(failed[0]!.attributes[ATTR.errorType]).toMatch(
      /^ENVELOPE_(DECRYPT_FAILED|CONTEXT_MISMATCH)$/,
    );
    expect(
      await otel.value(METRICS.operations, {
        [ATTR.operation]: "rewrap",
        [ATTR.keyRef]: newKey.keyRef,
        [ATTR.outcome]: "success",
      }),
    ).toBe(1);
  });

  it("keeps the caller's own audit hook, even when it throws", async () => {
    const otel = otelHarness();
    const seen: AuditEvent["operation"][] = [];
    const envelope = new Envelope(
      otel.telemetry.instrument({
        encrypt: aesProvider(),
        onAudit: (e) => {
          seen.push(e.operation);
          throw new Error("audit sink down");
        },
      }),
    );
    await envelope.encrypt("x", { context });
    expect(seen).toEqual(["wrap", "encrypt"]);
    expect(await otel.value(METRICS.operations, { [ATTR.operation]: "encrypt" })).toBe(1);
  });

  it("labels key references past maxKeyRefs as _other (stored values choose key references)", async () => {
    const otel = otelHarness({ maxKeyRefs: 1 });
    const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const sealedBy = (key: Buffer) =>
      new Envelope({ encrypt: localAesProvider({ keys: key }) }).encrypt("x", { context });
    const [sealedB, sealedC] = [await sealedBy(b), await sealedBy(c)];
    const all = localAesProvider({ keys: [a, b, c] });
    const keyRefB = localAesProvider({ keys: b }).keyRef;
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: all }));
    // Key A is the configured key: its label takes none of the slots. B, read from a stored
    // value, takes the one slot; C, read next, is _other.
    await envelope.encrypt("y", { context });
    await envelope.decrypt(sealedB, { context });
    await envelope.decrypt(sealedC, { context });

    const labels = new Set(
      (await otel.points(METRICS.operations)).map((p) => p.attributes[ATTR.keyRef]),
    );
    expect(labels).toEqual(new Set([all.keyRef, keyRefB, OTHER_KEY_REF]));
    const kmsLabels = new Set(
      (await otel.points(METRICS.kmsCalls)).map((p) => p.attributes[ATTR.keyRef]),
    );
    expect(kmsLabels).toEqual(new Set([all.keyRef, keyRefB, OTHER_KEY_REF]));
  });

  it("refuses a maxKeyRefs that is not a positive integer, with a typed error", () => {
    expect(() => otelHarness({ maxKeyRefs: 0 })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
  });
});

describe("KMS call metrics (from instrumented providers)", () => {
  it("counts calls and durations by provider, key reference and call kind", async () => {
    const otel = otelHarness();
    const provider = aesProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    const sealed = await envelope.encrypt("x", { context });
    envelope.clearCaches();
    await envelope.decrypt(sealed, { context });
    const base = { [ATTR.provider]: "local-aes", [ATTR.keyRef]: provider.keyRef };
    for (const operation of ["wrap", "unwrap"]) {
      const match = { ...base, [ATTR.kmsOperation]: operation, [ATTR.outcome]: "success" };
      expect(await otel.value(METRICS.kmsCalls, match)).toBe(1);
      expect(await otel.value(METRICS.kmsDuration, match)).toBe(1);
    }
    expect(await otel.points(METRICS.kmsErrors)).toEqual([]);
  });

  it.each([
    ["a typed provider error", undefined, "ENVELOPE_KMS_THROTTLED"],
    ["an untyped error", new Error("socket hang up"), UNTYPED_ERROR],
  ])("counts errors by code: %s", async (_name, error, code) => {
    const otel = otelHarness();
    const provider = error === undefined ? failingProvider() : failingProvider(error);
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    await expect(envelope.encrypt("x", { context })).rejects.toThrow();
    const match = { [ATTR.kmsOperation]: "wrap", [ATTR.errorType]: code };
    expect(await otel.value(METRICS.kmsErrors, match)).toBe(1);
    expect(await otel.value(METRICS.kmsCalls, { ...match, [ATTR.outcome]: "failure" })).toBe(1);
    expect(await otel.value(METRICS.kmsCalls, { [ATTR.outcome]: "success" })).toBe(0);
  });
});

describe("cache and data-key reuse metrics (observed from cacheStats)", () => {
  it("reports hits, misses, in-flight joins, evictions, size and data-key reuses", async () => {
    const otel = otelHarness();
    const inner = aesProvider();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let slow = false;
    // Holds unwraps until released, so concurrent misses overlap and join one flight.
    const gated: KeyProvider = {
      id: inner.id,
      keyRef: inner.keyRef,
      handles: (e) => inner.handles(e),
      wrap: (k, r) => inner.wrap(k, r),
      unwrap: async (e, r) => {
        if (slow) await gate;
        return inner.unwrap(e, r);
      },
    };
    const envelope = new Envelope(
      otel.telemetry.instrument({
        encrypt: gated,
        cache: { maxEntries: 1 },
        dataKeyReuse: { maxMessages: 3 },
      }),
    );
    otel.telemetry.observe(envelope, { client: "users" });
    const first = await envelope.encrypt("a", { context });
    await envelope.encrypt("b", { context }); // reuses first's data key
    await envelope.encrypt("c", { context }); // and again
    envelope.clearCaches();
    const other = await envelope.encrypt("d", { context: { id: "1" } }); // a new data key

    slow = true;
    const reads = [1, 2, 3].map(() => envelope.decrypt(first, { context }));
    release();
    await Promise.all(reads);
    await envelope.decrypt(first, { context }); // warm
    await envelope.decrypt(other, { context: { id: "1" } }); // evicts first's key (maxEntries 1)

    const stats = envelope.cacheStats();
    const client = { [ATTR.client]: "users" };
    expect(await otel.value(METRICS.cacheMisses, client)).toBe(stats.misses);
    expect(stats.misses).toBe(2);
    expect(await otel.value(METRICS.cacheInflightJoins, client)).toBe(2);
    expect(await otel.value(METRICS.cacheHits, client)).toBe(stats.hits);
    expect(stats.hits).toBeGreaterThanOrEqual(1);
    expect(await otel.value(METRICS.cacheEvictions, client)).toBe(1);
    expect(await otel.value(METRICS.cacheSize, client)).toBe(1);
    expect(await otel.value(METRICS.dataKeyReuses, client)).toBe(2);
    // Per key as well, on the encrypt counter.
    expect(
      await otel.value(METRICS.operations, {
        [ATTR.operation]: "encrypt",
        [ATTR.dataKeyReused]: true,
      }),
    ).toBe(2);
  });

  it("stops reading cacheStats when asked", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: aesProvider() }));
    const stop = otel.telemetry.observe(envelope);
    await envelope.encrypt("x", { context }); // encrypt does not use the unwrap cache
    expect(await otel.value(METRICS.cacheMisses)).toBe(0);
    stop();
    envelope.clearCaches();
    await envelope.decrypt(await envelope.encrypt("y", { context }), { context });
    expect(envelope.cacheStats().misses).toBe(1);
    // Cumulative export keeps the last observed value; it no longer follows the client.
    expect(await otel.value(METRICS.cacheMisses)).toBe(0);
  });
});
