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

  // Not async: a task that gets a slot at once starts with one `then` around it (this runs
  // once per row).
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) {
      this.#free--;
      return this.#start(task);
    }
    return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() =>
      this.#start(task),
    );
  }

  #start<T>(task: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = task();
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(this.#done, this.#failed);
  }

  readonly #done = <T>(value: T): T => {
    this.#release();
    return value;
  };

  readonly #failed = (error: unknown): never => {
    this.#release();
    throw error;
  };

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
