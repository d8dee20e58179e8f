/** What the SQL-text checks need of an encrypted entity. */
export interface NamedColumns {
  /** Names (property and database) that refer to an encrypted column. */
  names: Set<string>;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The first encrypted column an SQL fragment (a condition, an ORDER BY or GROUP BY term)
 * names, other than in `IS [NOT] NULL`, with the entity that has it. Names inside string
 * literals and parameters (`:name`, `:...name`) are not references.
 */
export function referencedColumn<G extends NamedColumns>(
  sql: string,
  aliases: [alias: string, guarded: G][],
): [string, G] | undefined {
  const code = withoutLiterals(sql);
  const q = '["`]?';
  for (const [alias, g] of aliases) {
    for (const name of g.names) {
      // alias.name or a bare name, quoted or not; not a parameter (:name), not a longer name.
      const re = new RegExp(
        `(?<![\\w.:@$"\`])(?:${q}${escapeRe(alias)}${q}\\.)?${q}${escapeRe(name)}${q}(?![\\w"\`])(?!\\s+IS\\s+(?:NOT\\s+)?NULL\\b)`,
        "i",
      );
      if (re.test(code)) return [name, g];
    }
  }
  return undefined;
}

/**
 * The SQL with each single-quoted literal (`''` escapes a quote) emptied, so `note = 'ssn'`
 * names no column. Quoted identifiers (`"…"`, `` `…` ``) are kept whole. Where lexing
 * depends on the dialect or its settings (backslash escapes on MySQL and in PostgreSQL
 * `E'…'`, comments, `$$` quoting) or a quote is left open, nothing is emptied: a reference
 * the database sees must never hide in what looked like a literal, and refusing a literal
 * by mistake is the safe side.
 */
export function withoutLiterals(sql: string): string {
  if (/--|\/\*|#|\$|\\/.test(sql)) return sql;
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === '"' || ch === "`") {
      const end = sql.indexOf(ch, i + 1);
      if (end < 0) return sql;
      out += sql.slice(i, end + 1);
      i = end + 1;
    } else if (ch === "'") {
      const end = literalEnd(sql, i);
      if (end < 0) return sql;
      out += "''";
      i = end + 1;
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}

/** The index of the quote that closes the literal opened at `start`, or -1. */
function literalEnd(sql: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = sql.indexOf("'", from);
    if (quote < 0) return -1;
    if (sql[quote + 1] !== "'") return quote;
    from = quote + 2;
  }
}
