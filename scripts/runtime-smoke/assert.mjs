// Small assertions whose messages never include the compared values (they may be plaintext).
export function check(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
}

export function sameBytes(a, b, what) {
  check(Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, what);
}

/** Runs `fn`, which must reject with an error carrying this `code`. */
export async function rejectsWith(code, fn, what) {
  try {
    await fn();
  } catch (error) {
    if (error?.code === code) return;
    throw new Error(
      `${what}: expected error code ${code}, got ${error?.code ?? error?.name ?? String(error)}`,
    );
  }
  throw new Error(`${what}: expected error code ${code}, but it succeeded`);
}
