/**
 * A FIFO of buffers: push what arrives, take exactly n bytes when available. Keeps the
 * streaming code in constant memory (at most one chunk plus one incoming buffer).
 *
 * Linear in the bytes pushed: `peek(n)` copies only when the first n bytes span several
 * buffers, and callers peek a field only once enough bytes for it have arrived (see
 * `readStreamHeader`), so a header that arrives in many small writes is copied once,
 * not once per write. Consumed buffers are dropped by advancing an index (no
 * `Array.shift`, which moves every remaining element).
 */
export class ByteQueue {
  #parts: (Buffer | undefined)[] = [];
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.#length += bytes.length;
  }

  /** Removes and returns the first n bytes (n ≤ length). */
  take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** The first n bytes (n ≤ length), without removing them. Copies only if they span buffers. */
  peek(n: number): Buffer {
    const first = this.#parts[this.#head];
    if (first && first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    for (let i = this.#head; o < n; i++) {
      const piece = this.#parts[i]!.subarray(0, n - o);
      out.set(piece, o);
      o += piece.length;
    }
    return out;
  }

  skip(n: number): void {
    this.#length -= n;
    while (n > 0) {
      const first = this.#parts[this.#head]!;
      if (first.length <= n) {
        this.#parts[this.#head++] = undefined;
        n -= first.length;
      } else {
        this.#parts[this.#head] = first.subarray(n);
        n = 0;
      }
    }
    // Drop the consumed slots once they are the larger part of the array: amortized O(1).
    if (this.#head === this.#parts.length) {
      this.#parts = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#parts.length) {
      this.#parts = this.#parts.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Everything left, emptying the queue. */
  drain(): Buffer {
    return this.take(this.#length);
  }
}
