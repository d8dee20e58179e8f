import type { SqlAdapter } from "@envelope/batch-rewrap";
import type { Envelope } from "@envelope/core";

/**
 * Inserts rows 1..rows into `table (id, email)`, each email sealed by `sealer` under the
 * context the engine's default builder gives (`{ table, column: "email", id }`), 1,000 rows
 * per INSERT.
 */
export async function insertSealedEmails(
  db: SqlAdapter,
  table: string,
  sealer: Envelope,
  rows: number,
): Promise<void> {
  for (let start = 1; start <= rows; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, rows - start + 1) }, (_, i) => start + i);
    const values = await Promise.all(
      ids.map((id) =>
        sealer.encrypt(`user${id}@example.com`, {
          context: { table, column: "email", id: String(id) },
          output: "binary",
        }),
      ),
    );
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id, i) => [id, values[i]]),
    );
  }
}
