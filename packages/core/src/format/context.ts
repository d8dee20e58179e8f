import { ConfigError, FormatError } from "../errors.js";
import {
  MAX_CONTEXT_BYTES,
  MAX_CONTEXT_KEY_LENGTH,
  MAX_CONTEXT_PAIRS,
  MAX_CONTEXT_VALUE_LENGTH,
} from "./constants.js";
import { Reader } from "./reader.js";

/**
 * The caller's encryption context: non-secret strings that say where a value belongs,
 * e.g. `{ table: "users", column: "email", id: "42" }`. Authenticated, never encrypted.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

const EMPTY = Buffer.from([0, 0]);

/**
 * Canonical encoding: u16 pair count, then for each pair in ascending bytewise order of
 * the UTF-8 key: u16 key length, key, u16 value length, value. Unambiguous by
 * construction (every field is length-prefixed) and independent of insertion order.
 */
export function encodeContext(context: EncryptionContext | undefined): Buffer {
  // Every property is read once, into a snapshot: a getter that changes between the
  // length pass and the copy pass would otherwise write past what it measured.
  return encodeSnapshot(snapshotContext(context));
}

/**
 * `encodeContext` for a context that `snapshotContext` already read (the client reads the
 * caller's context once and uses the snapshot for the AAD and the KMS): no second copy.
 */
export function encodeSnapshot(snapshot: EncryptionContext | undefined): Buffer {
  if (snapshot === undefined) return EMPTY;
  const keys = Object.keys(snapshot);
  if (keys.length === 0) return EMPTY;
  if (keys.length > MAX_CONTEXT_PAIRS) {
    throw badContext(`has ${keys.length} keys; the limit is ${MAX_CONTEXT_PAIRS}`);
  }
  return encodeAscii(snapshot, keys) ?? encodeUtf8(snapshot, keys);
}

/**
 * The caller's context read exactly once: a new plain object of its own enumerable
 * properties, each read one time (a getter runs once), so the bytes authenticated, the
 * context stored and the context a KMS binds are all the same. `undefined` stays
 * `undefined`. A context whose prototype is not a plain object's (a class instance, a
 * Map, `Object.create(proto)` with inherited properties) is `ENVELOPE_BAD_INPUT`: its
 * fields would otherwise be silently dropped and the value sealed under `{}`.
 */
export function snapshotContext(
  context: EncryptionContext | undefined,
): EncryptionContext | undefined {
  if (context === undefined) return undefined;
  if (typeof context !== "object" || context === null) {
    throw badContext("must be a plain object of string keys to string values");
  }
  // Object.prototype of this or another realm (vm, test runners), or null. A Map, Date,
  // Set, array or boxed string has another prototype and is refused here: it has no own
  // enumerable keys and would otherwise be sealed under (and open with) the empty context.
  const proto = plainPrototypeOf(context);
  if (proto === undefined) {
    throw badContext(
      "is a class instance or inherits properties from a prototype; pass a plain object literal (e.g. { ...fields })",
    );
  }
  // Null-prototype objects pass the check above; exotic ones (a module namespace) do not
  // describe themselves as plain objects.
  if (proto === null && Object.prototype.toString.call(context) !== "[object Object]") {
    throw badContext("must be a plain object of string keys to string values");
  }
  const keys = readContext(() => Object.keys(context));
  if (keys.length > MAX_CONTEXT_PAIRS) {
    throw badContext(`has ${keys.length} keys; the limit is ${MAX_CONTEXT_PAIRS}`);
  }
  const out: Record<string, string> = {};
  for (const key of keys) {
    const value = readContext(() => context[key]);
    // `out.__proto__ = v` would set the prototype, not a property: the pair would vanish
    // and the value be sealed under a context without it.
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value, enumerable: true, writable: true });
    } else {
      out[key] = value as string;
    }
  }
  return out;
}

/** A read of the caller's context; a getter or Proxy trap that throws is a typed error. */
function readContext<T>(read: () => T): T {
  try {
    return read();
  } catch {
    throw badContext(
      "could not be read (a getter or Proxy trap threw); pass a plain object literal of strings",
    );
  }
}

/**
 * `context`'s prototype when it is `null` or `Object.prototype` of some realm (this one, a
 * `node:vm` context, a test runner's): a prototype with a null prototype, no enumerable
 * fields and its own `hasOwnProperty` method. Undefined for anything else (a class, a
 * Map, a null-prototype object holding fields, even non-enumerable ones; a Proxy whose
 * traps hide them or throw), whose fields the snapshot would drop.
 */
function plainPrototypeOf(context: object): object | null | undefined {
  try {
    const proto: object | null = Object.getPrototypeOf(context);
    if (proto === null || proto === Object.prototype) return proto;
    const foreignObjectPrototype =
      Object.getPrototypeOf(proto) === null &&
      Object.keys(proto).length === 0 &&
      typeof Object.getOwnPropertyDescriptor(proto, "hasOwnProperty")?.value === "function";
    return foreignObjectPrototype ? proto : undefined;
  } catch {
    return undefined;
  }
}

const ASCII = /^\p{ASCII}*$/u;

/**
 * The common case — ASCII keys and values such as table names and row ids — without a
 * Buffer per string: for ASCII, string length is byte length and JavaScript's sort order
 * is bytewise order, so the result is identical to the general path. Returns undefined
 * when any string is not ASCII or a limit is hit (the general path reports it).
 */
function encodeAscii(context: EncryptionContext, keys: string[]): Buffer | undefined {
  let size = 2;
  for (const key of keys) {
    const value = context[key];
    if (typeof value !== "string" || key.length === 0 || key.length > MAX_CONTEXT_KEY_LENGTH)
      return undefined;
    if (value.length > MAX_CONTEXT_VALUE_LENGTH || !ASCII.test(key) || !ASCII.test(value))
      return undefined;
    size += 4 + key.length + value.length;
  }
  if (size > MAX_CONTEXT_BYTES) return undefined;
  const sorted = sortedKeys(keys);
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt16BE(sorted.length, 0);
  for (const key of sorted) {
    const value = context[key]!;
    o = out.writeUInt16BE(key.length, o);
    o += out.write(key, o, "latin1");
    o = out.writeUInt16BE(value.length, o);
    o += out.write(value, o, "latin1");
  }
  return out;
}

/**
 * A sorted copy of `keys`. A context has a handful of keys: an insertion sort compares
 * them in place, where Array.prototype.sort allocates its work arrays on every call (7% of
 * the bytes a bulk read allocates, bench/profile/alloc.ts). Longer lists take the sort.
 */
function sortedKeys(keys: readonly string[]): string[] {
  const sorted = keys.slice();
  if (sorted.length > 16) return sorted.sort();
  for (let i = 1; i < sorted.length; i++) {
    const key = sorted[i]!;
    let j = i - 1;
    for (; j >= 0 && sorted[j]! > key; j--) sorted[j + 1] = sorted[j]!;
    sorted[j + 1] = key;
  }
  return sorted;
}

function encodeUtf8(context: EncryptionContext, keys: string[]): Buffer {
  const pairs: [Buffer, Buffer][] = [];
  let size = 2;
  for (const key of keys) {
    const value = context[key];
    if (typeof value !== "string") {
      throw badContext(`value of "${printable(key)}" is a ${typeof value}; convert it to a string`);
    }
    const k = utf8Strict(key, "key");
    const v = utf8Strict(value, `value of "${printable(key)}"`);
    if (k.length === 0) throw badContext("has an empty key");
    if (k.length > MAX_CONTEXT_KEY_LENGTH) throw badContext("has a key longer than 1024 bytes");
    if (v.length > MAX_CONTEXT_VALUE_LENGTH) {
      throw badContext(
        `value of "${printable(key)}" is longer than ${MAX_CONTEXT_VALUE_LENGTH} bytes`,
      );
    }
    pairs.push([k, v]);
    size += 4 + k.length + v.length;
  }
  if (size > MAX_CONTEXT_BYTES) throw badContext(`encodes to ${size} bytes; the limit is 65535`);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt16BE(pairs.length, 0);
  for (const [k, v] of pairs) {
    o = out.writeUInt16BE(k.length, o);
    o += k.copy(out, o);
    o = out.writeUInt16BE(v.length, o);
    o += v.copy(out, o);
  }
  return out;
}

/**
 * Parses a stored canonical context, rejecting anything that is not canonical
 * (docs/FORMAT.md §4.1: pairs ≤ 1024, keys 1 … 1024 bytes, values ≤ 8192 bytes, keys
 * strictly ascending, valid UTF-8, nothing after the last pair), all ENVELOPE_BAD_FORMAT.
 */
export function decodeContext(bytes: Uint8Array): EncryptionContext {
  const r = new Reader(bytes);
  const count = r.u16("context.count");
  // §4.1: pair count ≤ 1024; each length is bounds-checked by the Reader before its bytes.
  if (count > MAX_CONTEXT_PAIRS) throw badStored(`declares ${count} pairs`);
  const out: Record<string, string> = Object.create(null);
  let previous: Uint8Array | undefined;
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  for (let i = 0; i < count; i++) {
    const k = r.bytesOf(r.u16("context.keyLength"), "context.key");
    const v = r.bytesOf(r.u16("context.valueLength"), "context.value");
    if (k.length === 0 || k.length > MAX_CONTEXT_KEY_LENGTH)
      throw badStored("has a bad key length");
    if (v.length > MAX_CONTEXT_VALUE_LENGTH) throw badStored("has a value that is too long");
    // §4 canonical order: bytewise ascending UTF-8 keys, so no duplicates.
    if (previous && Buffer.compare(previous, k) >= 0) throw badStored("is not in canonical order");
    previous = k;
    try {
      out[decoder.decode(k)] = decoder.decode(v);
    } catch (cause) {
      throw badStored("is not valid UTF-8", cause);
    }
  }
  // §4.1: no bytes after the last pair.
  r.end();
  return { ...out };
}

function utf8Strict(text: string, what: string): Buffer {
  if (!text.isWellFormed()) throw badContext(`${what} contains an unpaired surrogate`);
  return Buffer.from(text, "utf8");
}

// Context keys are not secret, but bound them in messages.
function printable(key: string): string {
  return key.length > 40 ? `${key.slice(0, 40)}…` : key;
}

function badContext(problem: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `Invalid encryption context: it ${problem}. A context is an object of string keys to string values, e.g. { table: "users", column: "email", id: "42" }.`,
  );
}

function badStored(problem: string, cause?: unknown): FormatError {
  return new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Malformed envelope: the stored context ${problem}.`,
    {
      cause,
      details: { field: "context" },
    },
  );
}
