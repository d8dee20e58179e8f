/**
 * At most `limit` tasks at once, started in the order they asked (FIFO). A worker keeps
 * one for all its batches, so the next batch's values take the KMS slots the moment the
 * current batch's last values free them: no drain at the end of a batch, no idle KMS
 * while a batch is read.
 */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  #head = 0;

  constructor(limit: number) {
    this.#free = Math.max(1, limit);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    if (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head]!;
      this.#waiting[this.#head++] = noop;
      // Compact now and then so a long run does not keep every resolved waiter.
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting.splice(0, this.#head);
        this.#head = 0;
      }
      next();
    } else {
      this.#free++;
    }
  }
}

const noop = () => {};
