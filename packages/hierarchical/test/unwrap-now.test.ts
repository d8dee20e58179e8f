// The LocalUnwrap capability (issue 15, item 1): with the intermediate key cached, a
// distinct record's data key is derived without a promise. The fast path must open
// exactly what the full path opens and refuse exactly what it refuses, with the same
// typed errors, and still report the unwrap to an audit hook.
import { randomBytes } from "node:crypto";
import {
  type AuditEvent,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  type KeyProvider,
  providerCapabilities,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { hierarchicalProvider, memoryKeyStore } from "../src/index.js";
import { countingMaster } from "./helpers.js";

const context = { table: "users", column: "email", id: "42" };

async function setup(suite: 1 | 3) {
  const { provider: master } = countingMaster();
  const provider = hierarchicalProvider({ master, store: memoryKeyStore(), suite });
  const writer = new Envelope({ encrypt: provider, cache: false });
  const values = await Promise.all(
    ["a", "b", "c"].map((t) => writer.encrypt(t, { context, output: "binary" })),
  );
  return { provider, values };
}

/** The same provider without the capability: what the full path does. */
const withoutNow = (p: KeyProvider): KeyProvider => ({
  id: p.id,
  keyRef: p.keyRef,
  handles: (e) => p.handles(e),
  wrap: (k, r) => p.wrap(k, r),
  unwrap: (e, r) => p.unwrap(e, r),
});

async function outcome(envelope: Envelope, value: Buffer, ctx = context) {
  try {
    return { ok: (await envelope.decrypt(value, { context: ctx })).toString() };
  } catch (error) {
    expect(EnvelopeError.isInstance(error)).toBe(true);
    return { code: (error as EnvelopeError).code };
  }
}

describe.each([1, 3] as const)("hierarchical unwrapNow, suite %i", (suite) => {
  it("is a named capability; gives the data key only when the IK is at hand", async () => {
    const { provider, values } = await setup(suite);
    expect(providerCapabilities(provider)).toContain("localUnwrap");
    const entry = decodeEnvelope(values[0]!).entries[0]!;
    const cold = hierarchicalProvider({
      master: countingMaster().provider,
      store: memoryKeyStore(),
      suite,
    });
    expect(cold.unwrapNow!(entry, { context })).toBeUndefined(); // not its IK: no I/O, no answer
    const now = provider.unwrapNow!(entry, { context });
    expect(Buffer.from(now!).equals(Buffer.from(await provider.unwrap(entry, { context })))).toBe(
      true,
    );
    expect(provider.unwrapNow!({ ...entry, wrapped: entry.wrapped.subarray(1) }, { context })).toBe(
      undefined,
    );
  });

  it("opens and refuses exactly as the full path, with the same error codes", async () => {
    const { provider, values } = await setup(suite);
    const good = values[0]!;
    const parts = decodeEnvelope(good);
    const flipSeed = Buffer.from(parts.entries[0]!.wrapped);
    flipSeed[0]! ^= 1;
    const badSeed = encodeEnvelope({
      ...parts,
      entries: [{ ...parts.entries[0]!, wrapped: flipSeed }],
    });
    const badBody = Buffer.from(good);
    badBody[badBody.length - 1]! ^= 1;
    const shortEntry = encodeEnvelope({
      ...parts,
      entries: [{ ...parts.entries[0]!, wrapped: parts.entries[0]!.wrapped.subarray(0, 16) }],
    });
    const cases: [Buffer, typeof context][] = [
      [good, context],
      [good, { ...context, id: "43" }],
      [badSeed, context],
      [badBody, context],
      [shortEntry, context],
    ];
    for (const cache of [undefined, false] as const) {
      const fast = new Envelope({ encrypt: provider, ...(cache === false ? { cache } : {}) });
      const full = new Envelope({
        encrypt: withoutNow(provider),
        ...(cache === false ? { cache } : {}),
      });
      await fast.decrypt(values[1]!, { context }); // the IK is cached from here on
      for (const [value, ctx] of cases) {
        expect(await outcome(fast, value, ctx)).toEqual(await outcome(full, value, ctx));
      }
      expect(await outcome(fast, good)).toEqual({ ok: "a" });
      expect((await outcome(fast, badSeed)).code).toBe("ENVELOPE_COMMITMENT_MISMATCH");
      expect((await outcome(fast, badBody)).code).toBe("ENVELOPE_DECRYPT_FAILED");
    }
  });

  it("reports the unwrap and the decrypt to an audit hook, as the full path does", async () => {
    const { provider, values } = await setup(suite);
    const events: AuditEvent[] = [];
    const envelope = new Envelope({ encrypt: provider, onAudit: (e) => events.push(e) });
    await envelope.decrypt(values[0]!, { context }); // loads the IK: the full path
    events.length = 0;
    expect((await envelope.decrypt(values[2]!, { context })).toString()).toBe("c");
    const ik = decodeEnvelope(values[2]!).entries[0]!.keyRef;
    expect(events.map((e) => [e.operation, e.provider, e.keyRef, e.outcome, e.cacheHit])).toEqual([
      ["unwrap", "hierarchical", ik, "success", false],
      ["decrypt", "hierarchical", ik, "success", false],
    ]);
  });

  it("a provider whose unwrapNow gives a key of the wrong length falls back to unwrap", async () => {
    const { provider, values } = await setup(suite);
    let calls = 0;
    const odd: KeyProvider = {
      ...withoutNow(provider),
      unwrapNow: () => randomBytes(16),
      unwrap: (e, r) => {
        calls++;
        return provider.unwrap(e, r);
      },
    };
    const envelope = new Envelope({ encrypt: odd, cache: false });
    expect((await envelope.decrypt(values[1]!, { context })).toString()).toBe("b");
    expect(calls).toBe(1);
  });
});
