/**
 * Every surface an error reaches a log through, rendered as text: for a leak test with
 * canary credentials. An error is checked on its message, stack, JSON.stringify,
 * util.inspect with hidden properties at any depth, util.format("%o"), String(), and the
 * same for each error down its `cause` chain (inspect already follows causes; the chain is
 * walked too so a surface that does not is still covered).
 *
 * @example
 * expect(findCanaries(error, ["CANARY-token"])).toEqual([]);
 */
import { format, inspect } from "node:util";

/** Each (surface, canary) pair where a canary string shows up; empty when none does. */
export function findCanaries(error: unknown, canaries: readonly string[]): string[] {
  const hits: string[] = [];
  for (const [surface, text] of surfaces(error)) {
    for (const canary of canaries) {
      if (text.includes(canary)) hits.push(`${surface} contains ${JSON.stringify(canary)}`);
    }
  }
  return hits;
}

/** The rendered surfaces of `error` and of each error in its cause chain (bounded). */
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

function safe<T>(f: () => T): T | string {
  try {
    return f();
  } catch (e) {
    return `<threw ${String(e)}>`;
  }
}
