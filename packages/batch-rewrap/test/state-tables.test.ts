import { randomBytes } from "node:crypto";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PG = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const prefix = `batch_rewrap_drop_${process.pid}_${randomBytes(2).toString("hex")}`;

describe("dropStateTables", () => {
  let db: SqlAdapter;
  beforeAll(async () => {
    db = await connect(PG);
  });
  afterAll(() => db.close());

  it("drops the four state tables of a prefix, and is a no-op when they are gone", async () => {
    for (const suffix of ["jobs", "ranges", "checkpoints", "failures"]) {
      await db.query(`CREATE TABLE ${prefix}_${suffix} (id int)`);
    }
    const count = async () =>
      Number(
        (
          await db.query(
            `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name LIKE '${prefix}\\_%'`,
          )
        ).rows[0]!.n,
      );
    expect(await count()).toBe(4);
    await dropStateTables(db, prefix);
    expect(await count()).toBe(0);
    await dropStateTables(db, prefix);
  });

  it("refuses a prefix that is not a plain identifier", async () => {
    await expect(dropStateTables(db, "x; DROP TABLE users")).rejects.toThrow();
  });
});
