import { tableExists } from "@envelope/batch-rewrap";
import { ConfigError } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { loadKeys } from "../config/load-keys.js";
import { openDb } from "../db/open-db.js";
import { output } from "../io.js";

/** `seed-demo`: a table of encrypted sample rows to practise rotation on. */
export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command("seed-demo")
    .description(
      "Create a demo table (id, email) of encrypted sample rows under the current encrypting key, to practise a rotation.",
    )
    .option("--db <url>", "database (default $ENVELOPE_DB_URL), e.g. pglite://./envelope-demo-db")
    .option("--table <name>", "table to create (must not exist)", "envelope_demo_users")
    .option("--rows <n>", "rows to insert", "1000")
    .addHelpText(
      "after",
      "\nExample:\n  envelope seed-demo --db pglite://./envelope-demo-db --rows 1000",
    )
    .action(async (opts: { db?: string; table: string; rows: string }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(opts.table))
        throw new ConfigError("ENVELOPE_BAD_INPUT", "--table must be a plain SQL name.");
      const rows = Number(opts.rows);
      if (!Number.isInteger(rows) || rows < 1 || rows > 10_000_000)
        throw new ConfigError("ENVELOPE_BAD_INPUT", "--rows must be 1…10000000.");
      const keys = await loadKeys(ctx, flags);
      const db = await openDb(ctx, opts, { createPglite: true });
      // Quoted, so the table is created with the name exactly as given (PostgreSQL would fold
      // an unquoted Demo to demo): the name tableExists looked up, and the one rewrap and
      // status then quote. The name passed the plain-name check above.
      const q = db.dialect === "mysql" ? "`" : '"';
      const table = `${q}${opts.table}${q}`;
      const exists = (cause?: unknown) =>
        new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `Table ${opts.table} already exists${cause ? " (or another relation of that name: a view, sequence or index)" : ""}; seed-demo creates a new table. Pick another --table, or drop it first if it is an old demo table. Nothing was changed.`,
          { details: { field: "table" }, ...(cause ? { cause } : {}) },
        );
      try {
        if (await tableExists(db, opts.table)) throw exists();
        await db
          .query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email TEXT NOT NULL)`)
          .catch((error: unknown) => {
            // What the lookup does not see (a sequence or index of that name, a server that
            // folds table names to lower case, a table created meanwhile) is refused here.
            throw alreadyExists(error) ? exists(error) : error;
          });
        for (let start = 1; start <= rows; start += 500) {
          const ids = Array.from({ length: Math.min(500, rows - start + 1) }, (_, i) => start + i);
          const values = await Promise.all(
            ids.map((id) =>
              keys.envelope.encrypt(`user${id}@example.com`, {
                context: { table: opts.table, column: "email", id: String(id) },
                output: "text",
              }),
            ),
          );
          await db.query(
            `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
            ids.flatMap((id, i) => [id, values[i]]),
          );
        }
      } finally {
        await db.close();
      }
      output(
        ctx.io,
        Boolean(flags.json),
        { table: opts.table, rows, key: keys.envelope.describe().encrypt },
        () =>
          `created ${opts.table} with ${rows} encrypted rows (context table=${opts.table},column=email,id=<id>) under ${keys.envelope.describe().encrypt.join(", ")}`,
      );
    });
}

/** PostgreSQL's duplicate_table (42P07) or MySQL/MariaDB's ER_TABLE_EXISTS_ERROR (1050). */
function alreadyExists(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown } | null;
  return e?.code === "42P07" || e?.code === "ER_TABLE_EXISTS_ERROR" || e?.errno === 1050;
}
