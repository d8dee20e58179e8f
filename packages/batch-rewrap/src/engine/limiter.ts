import { ConfigError } from "@envelope/core";

/** Calls per second, with an optional burst (default: a tenth of a second's worth, at least 1). */
export interface RateLimit {
  perSecond: number;
  burst?: number;
}

/** Time source of a limiter: real time by default; tests pass a fake one. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Multiplicative decrease on a throttle: the rate drops to this share of what was sent. */
export const BACKOFF = 0.7;
/** Additive increase: per second of successes, the rate grows by this share of the rate it had when throttled. */
const GROWTH = 0.05;
/** The adaptive rate never drops below this many calls per second. */
const MIN_RATE = 1;

/**
 * Paces KMS calls with an adaptive rate (AIMD), so a job uses the KMS quota and no more:
 *
 * - It starts at the configured limit (`rateLimit`; none = unlimited), which stays the
 *   ceiling.
 * - A throttling answer (`ENVELOPE_KMS_THROTTLED`: AWS ThrottlingException, HTTP 429 from
 *   Vault or Azure, …) cuts the rate to {@link BACKOFF} × the rate actually sent in the
 *   last second (at most once per second: the throttles of one burst count as one), and
 *   pauses every caller briefly (longer for each throttle in a row, ≤ 10 s).
 * - Each success grows the rate back (additive: about 5% of the rate it had when
 *   throttled, per second of successes) until it reaches the ceiling again, or is
 *   throttled again.
 *
 * The pacing is a token bucket in GCRA form (a theoretical arrival time), with a burst of
 * a tenth of a second's worth by default. One limiter per process, shared by its
 * workers: `rateLimit` is the quota of the whole process.
 */
export class Limiter {
  readonly #ceiling: number; // calls per second; Infinity = unlimited
  readonly #burst: number | undefined;
  readonly #clock: Clock;
  #rate: number; // current calls per second; Infinity = unlimited
  #tat = 0; // theoretical arrival time of the next call (ms)
  #pausedUntil = 0;
  #throttleStreak = 0;
  #lastDecrease = Number.NEGATIVE_INFINITY;
  #peak = 0; // the rate when last throttled (sets the growth step)
  #windowStart = Number.NEGATIVE_INFINITY; // the first call opens the first window
  #windowCalls = 0;
  #previousWindowCalls = 0;
  /** KMS calls made through this limiter. */
  calls = 0;
  /** Throttling errors seen. */
  throttled = 0;
  /** Times the rate was cut (throttles of one burst count once). */
  decreases = 0;

  constructor(limit?: number | RateLimit, clock: Clock = realClock) {
    const perSecond = typeof limit === "number" ? limit : limit?.perSecond;
    if (perSecond !== undefined && !(perSecond > 0)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "rateLimit must be a positive number of calls per second.",
        { details: { field: "rateLimit" } },
      );
    }
    const burst = typeof limit === "object" ? limit.burst : undefined;
    if (burst !== undefined && !(burst >= 1)) {
      throw new ConfigError("ENVELOPE_BAD_CONFIG", "rateLimit.burst must be at least 1.", {
        details: { field: "rateLimit" },
      });
    }
    this.#ceiling = perSecond ?? Number.POSITIVE_INFINITY;
    this.#rate = this.#ceiling;
    this.#burst = burst;
    this.#clock = clock;
  }

  /** The configured limit (calls per second; Infinity = none). */
  get ceiling(): number {
    return this.#ceiling;
  }

  /** The rate calls are paced at now (calls per second; Infinity = unlimited). */
  get rate(): number {
    return this.#rate;
  }

  /** Waits for a slot (and for any throttling pause), then counts one KMS call. */
  async take(): Promise<void> {
    for (;;) {
      const wait = this.#tryTake();
      if (wait <= 0) return;
      await this.#clock.sleep(wait);
    }
  }

  /**
   * `take` without waiting: counts one KMS call and returns true when it may go now (no
   * pause, no pacing wait); false when the caller must `take()` instead. Lets the
   * unpaced common case skip a promise and a microtask per call.
   */
  takeNow(): boolean {
    return this.#tryTake() <= 0;
  }

  /** Counts one call and returns 0 when it may go now, else the milliseconds to wait first. */
  #tryTake(): number {
    const now = this.#clock.now();
    if (this.#pausedUntil > now) return this.#pausedUntil - now;
    if (Number.isFinite(this.#rate)) {
      const interval = 1000 / this.#rate;
      const burst = this.#burst ?? Math.max(1, Math.floor(this.#rate / 10));
      const tat = Math.max(this.#tat, now);
      const wait = tat - (burst - 1) * interval - now;
      if (wait > 0) return wait;
      this.#tat = tat + interval;
    }
    this.#count(now);
    return 0;
  }

  /** Counts calls made elsewhere, unpaced: local keys on rewrap threads (see `threads`). */
  record(calls: number): void {
    this.calls += calls;
  }

  /** The KMS throttled a call: cut the rate (once per burst) and pause every caller (longer for each throttle in a row). */
  onThrottle(): number {
    this.throttled++;
    const now = this.#clock.now();
    if (now - this.#lastDecrease >= 1000) {
      const sent = Math.max(1, this.#recentRate(now));
      const from = Math.min(this.#rate, sent);
      this.#peak = from;
      this.#rate = Math.max(MIN_RATE, from * BACKOFF);
      this.#lastDecrease = now;
      this.decreases++;
    }
    // Calls already in flight when the pause began are refused together: one pause for
    // them all. Only a call sent after the pause, refused again, makes the next one longer.
    if (now < this.#pausedUntil) return this.#pausedUntil - now;
    this.#throttleStreak = Math.min(this.#throttleStreak + 1, 8);
    const pause = Math.min(10_000, 50 * 2 ** this.#throttleStreak) * (0.5 + Math.random() / 2);
    this.#pausedUntil = now + pause;
    return pause;
  }

  /** A call succeeded: grow the rate back toward the ceiling; the next throttle starts from a short pause. */
  onSuccess(): void {
    this.#throttleStreak = 0;
    if (this.#rate < this.#ceiling) {
      // ≈ rate successes per second, so the rate grows by GROWTH × peak per second.
      this.#rate = Math.min(this.#ceiling, this.#rate + (GROWTH * this.#peak) / this.#rate);
    }
  }

  #count(now: number): void {
    this.calls++;
    if (now - this.#windowStart >= 1000) {
      this.#previousWindowCalls = now - this.#windowStart >= 2000 ? 0 : this.#windowCalls;
      this.#windowCalls = 0;
      this.#windowStart = now;
    }
    this.#windowCalls++;
  }

  /**
   * Calls per second actually sent lately: the last full one-second window, or the
   * current one scaled to a second (a job throttled in its first milliseconds was sending
   * at the rate of those milliseconds, not at their count per second).
   */
  #recentRate(now: number): number {
    const elapsed = now - this.#windowStart;
    if (elapsed >= 2000) return 0;
    if (elapsed >= 1000) return this.#windowCalls;
    if (elapsed < 100 && this.#previousWindowCalls > 0) return this.#previousWindowCalls;
    return (this.#windowCalls * 1000) / Math.max(elapsed, 1);
  }
}

/** The limiter a job uses: the one given (shared with other jobs of this process), or a new one. */
export function toLimiter(limit: number | RateLimit | Limiter | undefined): Limiter {
  return limit instanceof Limiter ? limit : new Limiter(limit);
}
