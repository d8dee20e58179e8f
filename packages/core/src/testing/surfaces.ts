/**
 * Every surface an error reaches a log through, rendered as text: for a leak test with
 * canary credentials. An error is checked on its message, stack, JSON.stringify,
 * util.inspect with hidden properties at any depth, util.format("%o"), String(), and the
 * same for each error down its `cause` chain (inspect already follows causes; the chain is
 * walked too so a surface that does not is still covered).
 */
import { format, inspect } from "node:util";

/**
 * Each (surface, canary) pair where a canary string shows up; empty when none does.
 *
 * @example
 * assert.deepEqual(findCanaries(error, ["CANARY-token"]), []);
 */
export function findCanaries(error: unknown, canaries: readonly string[]): string[] {
  const hits: string[] = [];
  for (const [surface, text] of surfaces(error)) {
    for (const canary of canaries) {
      if (canary.length > 0 && text.includes(canary)) {
        hits.push(`${surface} contains ${JSON.stringify(canary.slice(0, 12))}…`);
      }
    }
  }
  return hits;
}

/**
 * The rendered surfaces of `error` and of each error in its cause chain (bounded).
 *
 * @example
 * for (const [where, text] of surfaces(error)) console.log(where, text.length);
 */
export function surfaces(error: unknown): [string, string][] {
  const out: [string, string][] = [];
  let current: unknown = error;
  const seen = new Set<unknown>();
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    if (seen.has(current)) break;
    seen.add(current);
    const at = depth === 0 ? "error" : `cause[${depth}]`;
    const e = current as { message?: unknown; stack?: unknown; cause?: unknown };
    out.push([`${at}.message`, String(e.message)]);
    out.push([`${at}.stack`, String(e.stack)]);
    out.push([`${at} JSON.stringify`, safe(() => JSON.stringify(current))]);
    out.push([
      `${at} inspect(showHidden, depth Infinity)`,
      inspect(current, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
    ]);
    out.push([`${at} format(%o)`, format("%o", current)]);
    out.push([`${at} String()`, safe(() => String(current))]);
    // Own properties too, enumerable or not (inspect may skip some getters' values).
    for (const key of Reflect.ownKeys(Object(current))) {
      const value = safe(() => (current as Record<PropertyKey, unknown>)[key]);
      out.push([
        `${at}[${String(key)}]`,
        typeof value === "string" ? value : inspect(value, { showHidden: true, depth: 20 }),
      ]);
    }
    current = e.cause;
  }
  return out;
}

/**
 * The ways a secret byte string shows up in text: hex, base64, base64url, and the byte
 * list `util.inspect` prints for a Buffer. Feed them to `findCanaries`.
 *
 * @example
 * findCanaries(error, secretForms(dataKey));
 */
export function secretForms(secret: Uint8Array): string[] {
  const bytes = Buffer.from(secret);
  const head = [...bytes.subarray(0, 12)];
  return [
    bytes.toString("hex"),
    bytes.toString("base64"),
    bytes.toString("base64url"),
    // inspect(Buffer) prints hex bytes, inspect(Uint8Array) decimal ones.
    head.map((b) => b.toString(16).padStart(2, "0")).join(" "),
    head.join(", "),
  ];
}

function safe<T>(f: () => T): T | string {
  try {
    return f();
  } catch (e) {
    return `<threw ${String(e)}>`;
  }
}
