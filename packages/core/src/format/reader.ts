import { FormatError } from "../errors.js";

/**
 * A bounds-checked cursor over envelope bytes (docs/FORMAT.md §2.1: "before every read it
 * checks that enough bytes remain"). Every read checks the remaining length before it
 * slices and names the field in its error; slices are views, never copies, so
 * hostile input cannot make the decoder allocate more than the input itself.
 */
export class Reader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(field: string): number {
    this.require(1, field);
    return this.bytes[this.offset++]!;
  }

  u16(field: string): number {
    this.require(2, field);
    const value = (this.bytes[this.offset]! << 8) | this.bytes[this.offset + 1]!;
    this.offset += 2;
    return value;
  }

  u32(field: string): number {
    this.require(4, field);
    const b = this.bytes;
    const o = this.offset;
    const value = b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
    this.offset += 4;
    return value;
  }

  bytesOf(length: number, field: string): Uint8Array {
    this.require(length, field);
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  /** §2.1 step 10: nothing after the tag (or, in a stored context, after the last pair). */
  end(): void {
    if (this.remaining !== 0) {
      throw new FormatError(
        "ENVELOPE_BAD_FORMAT",
        `Malformed envelope: ${this.remaining} unexpected trailing byte(s). Pass the stored value exactly as Envelope produced it.`,
        { details: { field: "end", offset: this.offset } },
      );
    }
  }

  private require(length: number, field: string): void {
    if (this.remaining < length) {
      throw new FormatError(
        "ENVELOPE_BAD_FORMAT",
        `Malformed envelope: truncated at field "${field}" (needs ${length} byte(s), ${this.remaining} left). The value was cut short or is not an Envelope value.`,
        { details: { field, offset: this.offset } },
      );
    }
  }
}

/**
 * Appends big-endian fields into one pre-sized buffer. The envelope encoder (§6) and the
 * stream header encoder (STREAMING.md "Layout") both write through it.
 */
export class Writer {
  private offset = 0;
  readonly bytes: Buffer;

  constructor(length: number) {
    this.bytes = Buffer.allocUnsafe(length);
  }

  u8(value: number): void {
    this.bytes[this.offset++] = value;
  }

  u16(value: number): void {
    this.bytes.writeUInt16BE(value, this.offset);
    this.offset += 2;
  }

  u32(value: number): void {
    this.bytes.writeUInt32BE(value, this.offset);
    this.offset += 4;
  }

  put(value: Uint8Array): void {
    this.bytes.set(value, this.offset);
    this.offset += value.length;
  }

  /** Reserves `length` bytes for the caller to fill; returns their offset. */
  skip(length: number): number {
    const at = this.offset;
    this.offset += length;
    return at;
  }

  finish(): Buffer {
    if (this.offset !== this.bytes.length) throw new Error("Writer: size mismatch (bug)");
    return this.bytes;
  }
}
