import { type Clock, Limiter } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider, localAesProvider, ProviderError } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { metered } from "../src/engine/metered.js";
import { withKmsRetry } from "../src/engine/process.js";
import { Slots } from "../src/engine/slots.js";
import { rewrapTransform } from "../src/engine/transform.js";

// The per-value helpers of the engine are plain functions returning promises (no async
// frame, no await of the limiter when nothing paces): these tests pin what they must
// still do — pace, count, feed throttles back, hold the slot limit, retry.

/** A clock whose sleeps resolve only when `advance` moves time past them. */
class ManualClock implements Clock {
  t = 0;
  #timers: { at: number; resolve: () => void }[] = [];
  now = () => this.t;
  sleep = (ms: number) =>
    new Promise<void>((resolve) => this.#timers.push({ at: this.t + ms, resolve }));
  advance(ms: number) {
    this.t += ms;
    const due = this.#timers.filter((x) => x.at <= this.t);
    this.#timers = this.#timers.filter((x) => x.at > this.t);
    for (const x of due) x.resolve();
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("Limiter.takeNow", () => {
  it("counts a call that may go now, and refuses (uncounted) one that must wait", () => {
    const clock = new ManualClock();
    const limiter = new Limiter({ perSecond: 10, burst: 2 }, clock);
    expect(limiter.takeNow()).toBe(true);
    expect(limiter.takeNow()).toBe(true);
    expect(limiter.takeNow()).toBe(false); // burst used up
    expect(limiter.calls).toBe(2);
    clock.advance(100);
    expect(limiter.takeNow()).toBe(true);
    expect(limiter.calls).toBe(3);
  });

  it("refuses while a throttle pauses every caller", () => {
    const clock = new ManualClock();
    const limiter = new Limiter(undefined, clock);
    expect(limiter.takeNow()).toBe(true);
    const pause = limiter.onThrottle();
    expect(limiter.takeNow()).toBe(false);
    clock.advance(pause);
    expect(limiter.takeNow()).toBe(true);
    expect(limiter.calls).toBe(2);
  });
});

describe("metered provider", () => {
  const entry = async (p: KeyProvider) => p.wrap(Buffer.alloc(32, 7), { context: {} });

  it("sends an unpaced call in the same turn (no wait on the limiter)", async () => {
    const inner = localAesProvider({ keys: Buffer.alloc(32, 1) });
    let sent = 0;
    const unwrap = inner.unwrap.bind(inner);
    inner.unwrap = (e, r) => {
      sent++;
      return unwrap(e, r);
    };
    const limiter = new Limiter();
    const m = metered(inner, limiter);
    const wrapped = await entry(m);
    const opened = m.unwrap(wrapped, { context: {} });
    expect(sent).toBe(1); // before: the call waited one turn for limiter.take()
    expect(Buffer.from(await opened).equals(Buffer.alloc(32, 7))).toBe(true);
    expect(limiter.calls).toBe(2);
  });

  it("still paces calls when the limiter makes them wait", async () => {
    const clock = new ManualClock();
    const limiter = new Limiter({ perSecond: 10, burst: 1 }, clock);
    const m = metered(localAesProvider({ keys: Buffer.alloc(32, 1) }), limiter);
    const first = m.wrap(Buffer.alloc(32, 7), { context: {} });
    let secondDone = false;
    const second = m.wrap(Buffer.alloc(32, 7), { context: {} }).then(() => {
      secondDone = true;
    });
    await first;
    await tick();
    expect(secondDone).toBe(false);
    expect(limiter.calls).toBe(1);
    clock.advance(100);
    await second;
    expect(limiter.calls).toBe(2);
  });

  it("feeds a throttle back to the limiter, also when the provider throws synchronously", async () => {
    const limiter = new Limiter();
    const throttled = () =>
      new ProviderError("ENVELOPE_KMS_THROTTLED", "slow down", { details: { provider: "x" } });
    const inner = localAesProvider({ keys: Buffer.alloc(32, 1) });
    inner.unwrap = () => {
      throw throttled();
    };
    inner.wrap = () => Promise.reject(throttled());
    const m = metered(inner, limiter);
    await expect(m.wrap(Buffer.alloc(32), { context: {} })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_THROTTLED",
    });
    const entryLike = { providerId: "local-aes", keyRef: inner.keyRef, wrapped: Buffer.alloc(40) };
    await expect(m.unwrap(entryLike, { context: {} })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_THROTTLED",
    });
    expect(limiter.throttled).toBe(2);
  });
});

describe("Slots", () => {
  it("runs at most `limit` tasks at once, in the order they asked, and frees a slot on failure", async () => {
    const slots = new Slots(2);
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const task =
      (i: number, fail = false) =>
      () => {
        started.push(i);
        if (fail) throw new Error(`sync ${i}`);
        return new Promise<number>((resolve) => gates.push(() => resolve(i)));
      };
    const a = slots.run(task(1));
    const b = slots.run(task(2, true));
    const c = slots.run(task(3));
    const d = slots.run(task(4));
    await expect(b).rejects.toThrow("sync 2");
    await tick();
    expect(started).toEqual([1, 2, 3]); // the failed task's slot went to task 3
    gates.shift()!();
    expect(await a).toBe(1);
    await tick();
    expect(started).toEqual([1, 2, 3, 4]);
    for (const g of gates.splice(0)) g();
    expect(await Promise.all([c, d])).toEqual([3, 4]);
  });
});

describe("withKmsRetry", () => {
  const unavailable = () =>
    new ProviderError("ENVELOPE_KMS_THROTTLED", "busy", { details: { provider: "x" } });

  it("retries a throttled call and returns its result", async () => {
    let calls = 0;
    const out = await withKmsRetry(new Limiter(), 3, async () => {
      if (++calls < 3) throw unavailable();
      return "ok";
    });
    expect(out).toBe("ok");
    expect(calls).toBe(3);
  });

  it("gives up after `retries`, and does not retry other errors (sync throws included)", async () => {
    let calls = 0;
    await expect(
      withKmsRetry(new Limiter(), 2, () => {
        calls++;
        throw unavailable();
      }),
    ).rejects.toMatchObject({ code: "ENVELOPE_KMS_THROTTLED" });
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withKmsRetry(new Limiter(), 5, async () => {
        calls++;
        throw new Error("not a KMS error");
      }),
    ).rejects.toThrow("not a KMS error");
    expect(calls).toBe(1);
  });
});

describe("rewrapTransform.classify", () => {
  it("skips exactly the values whose entries are the targets, in any order", async () => {
    const a = localAesProvider({ keys: Buffer.alloc(32, 1) });
    const b = localAesProvider({ keys: Buffer.alloc(32, 2) });
    const c = localAesProvider({ keys: Buffer.alloc(32, 3) });
    const sealed = (...keys: KeyProvider[]) =>
      new Envelope({ encrypt: keys, cache: false }).encrypt("x", { output: "binary" });
    const to = [a, b];
    const t = rewrapTransform(new Envelope({ encrypt: to, cache: false }), to, {
      verifyAll: false,
      verifyBody: true,
    });
    expect(t.classify(await sealed(a, b))).toBe("skip");
    expect(t.classify(await sealed(b, a))).toBe("skip");
    expect(t.classify(await sealed(a))).toBe("work");
    expect(t.classify(await sealed(a, c))).toBe("work");
    expect(t.classify(await sealed(a, b, c))).toBe("work");
    const text = await new Envelope({ encrypt: to, cache: false }).encrypt("x");
    expect(t.classify(text)).toBe("skip");
    expect(() => t.classify(Buffer.from("not an envelope"))).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ENVELOPE_/) }),
    );
  });
});
