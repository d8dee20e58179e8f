// The second Ctrl-C marks the job stopped and leaves. InnoDB releases the job row before it
// acknowledges the mark's COMMIT, so a batch of this process that waited on that row could
// commit after the mark (the job would read as running until its lease passed). The job's
// adapter from stopJobOnQuit lets no batch commit once the mark is made. A stand-in adapter
// records the order of commits, which a real database makes a matter of timing.
import type { SqlAdapter, SqlExecutor } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";
import type { DbFlags } from "../src/db/job-flags.js";
import { stopJobOnQuit } from "../src/db/resume.js";
import { runQuitHooks } from "../src/quit.js";

function recordingAdapter(log: string[]): SqlAdapter {
  const tx: SqlExecutor = {
    query: async (sql) => {
      if (/UPDATE .*stopped/s.test(sql)) log.push("mark stopped");
      return { rows: [], affected: 0 };
    },
  };
  return {
    dialect: "mysql",
    name: "stand-in",
    sessions: true,
    query: tx.query,
    session: () => Promise.reject(new Error("not used")),
    close: async () => {},
    transaction: async (fn) => {
      const result = await fn(tx);
      log.push("commit");
      return result;
    },
  };
}

const flags = { apply: true, statePrefix: "quit_test" } as DbFlags;
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("stopJobOnQuit", () => {
  it("no batch of the job commits after the stop mark, one that finished before does", async () => {
    const log: string[] = [];
    const { db, off } = stopJobOnQuit(recordingAdapter(log), flags, "job-1");
    try {
      await db.transaction(async () => log.push("batch 1"));
      let release!: () => void;
      // Batch 2 is waiting on the job row when the quit comes, and gets it after the mark.
      const batch2 = db.transaction(async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        log.push("batch 2");
      });
      await runQuitHooks(1000);
      release();
      await tick();
      expect(log).toEqual(["batch 1", "commit", "mark stopped", "commit", "batch 2"]);
      void batch2; // never settles: the process leaves, and the connection's close rolls it back
    } finally {
      off();
    }
  });

  it("a dry run gets the adapter as it is", () => {
    const adapter = recordingAdapter([]);
    const { db } = stopJobOnQuit(adapter, { ...flags, apply: false }, "job-1");
    expect(db).toBe(adapter);
  });
});
