/**
 * A FIFO of buffers: push what arrives, take exactly n bytes when available. Keeps the
 * streaming code in constant memory (at most one chunk plus one incoming buffer).
 */
export class ByteQueue {
  #parts: Buffer[] = [];
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

  /** The first n bytes (n ≤ length), without removing them. */
  peek(n: number): Buffer {
    const first = this.#parts[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    for (const part of this.#parts) {
      if (o === n) break;
      const piece = part.subarray(0, n - o);
      out.set(piece, o);
      o += piece.length;
    }
    return out;
  }

  skip(n: number): void {
    this.#length -= n;
    while (n > 0) {
      const first = this.#parts[0]!;
      if (first.length <= n) {
        this.#parts.shift();
        n -= first.length;
      } else {
        this.#parts[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  /** Everything left, emptying the queue. */
  drain(): Buffer {
    return this.take(this.#length);
  }
}
