import { ConfigError, FormatError } from "@envelope/core";

/**
 * Plaintext layout of an encrypted field: one type tag byte, then the value bytes. The
 * tag lets a number come back as a number, a Date as a Date, bytes as a Buffer.
 *
 * | tag  | type    | value bytes                                   |
 * | ---- | ------- | --------------------------------------------- |
 * | 0x01 | string  | UTF-8                                         |
 * | 0x02 | number  | IEEE-754 float64, big-endian (NaN, ±0, ±∞ kept) |
 * | 0x03 | boolean | one byte, 0x00 or 0x01                        |
 * | 0x04 | Date    | float64 big-endian of `getTime()`             |
 * | 0x05 | JSON    | UTF-8 of `JSON.stringify` (objects, arrays)   |
 * | 0x06 | bytes   | the bytes (Buffer / Uint8Array → Buffer)      |
 * | 0x07 | bigint  | UTF-8 decimal                                 |
 */
export const TAG = {
  string: 0x01,
  number: 0x02,
  boolean: 0x03,
  date: 0x04,
  json: 0x05,
  bytes: 0x06,
  bigint: 0x07,
} as const;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Value → tagged plaintext bytes. `field` only names the field in errors. */
export function encodeValue(value: unknown, field: string): Buffer {
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw badValue(field, "a string with an unpaired surrogate");
    return tagged(TAG.string, Buffer.from(value, "utf8"));
  }
  if (typeof value === "number") return tagged(TAG.number, float64(value));
  if (typeof value === "boolean") return Buffer.of(TAG.boolean, value ? 1 : 0);
  if (typeof value === "bigint") return tagged(TAG.bigint, Buffer.from(value.toString(), "ascii"));
  if (value instanceof Date) return tagged(TAG.date, float64(value.getTime()));
  if (value instanceof Uint8Array) return tagged(TAG.bytes, value);
  if (typeof value === "object" && value !== null) {
    let json: string | undefined;
    let lost: string | undefined;
    // The replacer sees every value after its toJSON: what JSON would drop or turn into
    // `{}` (a Map's entries, a Set's members) is noted, and the value refused below.
    const replacer = (_key: string, v: unknown) => {
      lost ??= notJsonData(v);
      return v;
    };
    try {
      json = JSON.stringify(value, replacer);
    } catch (cause) {
      throw badValue(field, "an object JSON.stringify cannot serialize", cause);
    }
    if (lost !== undefined) throw unserializable(field, lost);
    if (json === undefined) throw badValue(field, "an object that serializes to nothing");
    return tagged(TAG.json, Buffer.from(json, "utf8"));
  }
  throw badValue(field, `a ${typeof value}`);
}

/** Tagged plaintext bytes → value. Zeroes the input after decoding. */
export function decodeValue(bytes: Buffer, field: string): unknown {
  try {
    if (bytes.length === 0) throw badTag(field);
    const body = bytes.subarray(1);
    switch (bytes[0]) {
      case TAG.string:
        return utf8(body, field);
      case TAG.number:
        return readFloat(body, field);
      case TAG.boolean:
        if (body.length !== 1 || body[0]! > 1) throw badTag(field);
        return body[0] === 1;
      case TAG.date:
        return new Date(readFloat(body, field));
      case TAG.json:
        try {
          return JSON.parse(utf8(body, field));
        } catch (cause) {
          throw badTag(field, cause);
        }
      case TAG.bytes:
        return Buffer.from(body);
      case TAG.bigint:
        return BigInt(utf8(body, field));
      default:
        throw badTag(field);
    }
  } finally {
    bytes.fill(0);
  }
}

/**
 * Objects JSON.stringify reduces to `{}` (or `null`, or drops) without an error, although
 * they hold data: their entries live in internal slots, not in enumerable properties.
 */
const OPAQUE: readonly [new (...args: never[]) => object, string][] = [
  [Map, "a Map"],
  [Set, "a Set"],
  [WeakMap, "a WeakMap"],
  [WeakSet, "a WeakSet"],
  [WeakRef, "a WeakRef"],
  [Promise, "a Promise"],
  [RegExp, "a RegExp"],
  [Error, "an Error"],
  [ArrayBuffer, "an ArrayBuffer"],
  [DataView, "a DataView"],
  ...(typeof SharedArrayBuffer === "function"
    ? [[SharedArrayBuffer, "a SharedArrayBuffer"] as [new () => object, string]]
    : []),
];

/**
 * What makes `v` (a value JSON.stringify is about to write, after its toJSON) lose data,
 * or undefined when JSON keeps it: plain and null-prototype objects, arrays, typed arrays
 * (their indexes are enumerable), boxed primitives and class instances with enumerable own
 * properties are kept; functions, symbols, Maps, Sets and their kind, and class instances
 * with no enumerable own property (they serialize to `{}`) are not.
 */
function notJsonData(v: unknown): string | undefined {
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return "a symbol";
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  for (const [type, name] of OPAQUE) if (v instanceof type) return name;
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return undefined;
  if (ArrayBuffer.isView(v)) return undefined;
  if (v instanceof Number || v instanceof String || v instanceof Boolean) return undefined;
  if (Object.keys(v).length > 0) return undefined;
  return "an object with no enumerable property and no toJSON (a class instance JSON writes as {})";
}

function unserializable(field: string, what: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `Field "${field}" holds ${what}, itself or inside its JSON value; JSON would store it as {} (or drop it) and the data would be lost. Convert it to a plain object or array first (e.g. Object.fromEntries(map), [...set]), or give its class a toJSON.`,
    { details: { field } },
  );
}

function tagged(tag: number, value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + value.length);
  out[0] = tag;
  out.set(value, 1);
  return out;
}

function float64(n: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(n, 0);
  return out;
}

function readFloat(body: Buffer, field: string): number {
  if (body.length !== 8) throw badTag(field);
  return body.readDoubleBE(0);
}

function utf8(body: Buffer, field: string): string {
  try {
    return strictUtf8.decode(body);
  } catch (cause) {
    throw badTag(field, cause);
  }
}

function badValue(field: string, what: string, cause?: unknown): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `Field "${field}" holds ${what}; encrypted fields take a string, number, boolean, bigint, Date, Buffer/Uint8Array or JSON object (null and undefined are stored as they are).`,
    { cause, details: { field } },
  );
}

function badTag(field: string, cause?: unknown): FormatError {
  return new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Field "${field}" decrypted to a value without a valid type tag. It was not sealed by @envelope/records (use envelope.decrypt for values sealed with envelope.encrypt).`,
    { cause, details: { field } },
  );
}
