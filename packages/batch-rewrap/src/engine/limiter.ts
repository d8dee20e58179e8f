/** Calls per second, with an optional burst (default: one second's worth). */
export interface RateLimit {
  perSecond: number;
  burst?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Paces KMS calls: a token bucket (GCRA form: each call reserves the next free slot),
 * plus a shared pause that throttling errors extend, so every concurrent call slows down
 * together when the KMS says "too many requests". One limiter per process: with several
 * workers, give each `quota / workers`.
 */
export class Limiter {
  readonly #rate: number | undefined; // tokens per ms
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  #pausedUntil = 0;
  #throttleStreak = 0;
  /** KMS calls made through this limiter. */
  calls = 0;
  /** Throttling errors seen. */
  throttled = 0;

  constructor(limit?: number | RateLimit) {
    const perSecond = typeof limit === "number" ? limit : limit?.perSecond;
    if (perSecond !== undefined && !(perSecond > 0)) {
      throw new RangeError("rateLimit must be a positive number of calls per second");
    }
    this.#rate = perSecond ? perSecond / 1000 : undefined;
    this.#burst =
      (typeof limit === "object" ? limit.burst : undefined) ??
      Math.max(1, Math.floor(perSecond ?? 1));
    this.#tokens = this.#burst;
  }

  /** Waits for a token (and for any throttling pause), then counts one KMS call. */
  async take(): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (this.#pausedUntil > now) {
        await sleep(this.#pausedUntil - now);
        continue;
      }
      if (this.#rate !== undefined) {
        this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate);
        this.#last = now;
        if (this.#tokens < 1) {
          await sleep((1 - this.#tokens) / this.#rate);
          continue;
        }
        this.#tokens -= 1;
      }
      this.calls++;
      return;
    }
  }

  /** The KMS throttled us: pause every caller, longer for each throttle in a row (≤ 10 s). */
  onThrottle(): number {
    this.throttled++;
    this.#throttleStreak = Math.min(this.#throttleStreak + 1, 8);
    const pause = Math.min(10_000, 50 * 2 ** this.#throttleStreak) * (0.5 + Math.random() / 2);
    this.#pausedUntil = Math.max(this.#pausedUntil, performance.now() + pause);
    return pause;
  }

  /** A call succeeded: the next throttle starts from a short pause again. */
  onSuccess(): void {
    this.#throttleStreak = 0;
  }
}
