import { ConfigError, type EncryptionContext } from "@envelope/core";

/**
 * Parses `key=value` pairs given as repeated flags and/or comma-separated lists:
 * `-c table=users -c column=email` or `--context "table=users,column=email"`.
 */
export function parsePairs(items: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    for (const pair of item.split(",")) {
      if (pair.trim() === "") continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `Context "${pair}" is not key=value. Example: --context table=users,column=email,id={id}`,
          {
            details: { field: "context" },
          },
        );
      }
      out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
  }
  return out;
}

/** The default context template of database commands: what @envelope/core's examples use. */
export const DEFAULT_ROW_TEMPLATE = "table={table},column={column},id={pk}";

/**
 * A context builder from a template such as `table=users,column={column},id={id}`:
 * `{table}`, `{column}` and `{pk}` are the job's, any other `{name}` is that row column
 * (add it to --context-columns). Returns the builder and the row columns it reads.
 */
export function templateContext(
  template: string,
  table: string,
  primaryKey: string,
): {
  build: (row: Readonly<Record<string, unknown>>, column: string) => EncryptionContext;
  columns: string[];
} {
  const pairs = parsePairs([template]);
  const columns = new Set<string>();
  for (const value of Object.values(pairs)) {
    for (const m of value.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
      if (!["table", "column", "pk"].includes(m[1]!)) columns.add(m[1]!);
    }
  }
  const build = (row: Readonly<Record<string, unknown>>, column: string): EncryptionContext => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(pairs)) {
      out[k] = v.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
        if (name === "table") return table;
        if (name === "column") return column;
        if (name === "pk") return String(row[primaryKey]);
        const cell = row[name];
        return cell === null || cell === undefined ? "" : String(cell);
      });
    }
    return out;
  };
  return { build, columns: [...columns].filter((c) => c !== primaryKey) };
}
