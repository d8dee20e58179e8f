/**
 * Strings read from a stored value (key references, provider ids) are attacker-chosen
 * when the attacker can write to the database. Wherever one is shown (error messages,
 * CLI output, audit events) it goes through `printable` first, so it cannot inject
 * newlines or terminal escape sequences, nor flood a log.
 */

/** Longest string shown as is; longer ones are cut and marked with their full length. */
export const MAX_PRINTABLE_LENGTH = 200;

// C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides
// that change how a line is displayed.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` with every control character escaped as `\xNN` / `\uNNNN` and cut to `max`
 * characters (with `…(+N chars)` appended when cut).
 *
 * @example
 * printable("key\n\u001b[31mred") // 'key\\x0a\\x1b[31mred'
 */
export function printable(value: string, max = MAX_PRINTABLE_LENGTH): string {
  const cut = value.length > max ? value.slice(0, max) : value;
  const escaped = cut.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
  return value.length > max ? `${escaped}…(+${value.length - max} chars)` : escaped;
}
