import type { SqlAdapter } from "../adapters/types.js";
import type { JobSpec } from "./jobs.js";
import { tableExists } from "./lookup.js";
import { stateTables } from "./tables.js";

/** A job of the state tables that has not finished: see {@link findUnfinishedJobs}. */
export interface UnfinishedJob {
  jobId: string;
  spec: JobSpec;
  /**
   * `running`: a worker committed a batch (or created / reopened / resumed the job) within
   * the lease; `incomplete`: its process stopped at a checkpoint (Ctrl-C: at once) or was
   * killed (no progress for longer than the lease). Resume it.
   */
  state: "running" | "incomplete";
  /**
   * The last progress any worker recorded: ISO time by the database's clock (rows written
   * by earlier versions carry their worker's clock); "" when none was recorded.
   */
  lastProgressAt: string;
  /** Seconds since then, by the database's clock (never negative); -1 when unknown. */
  idleSeconds: number;
  ranges: { total: number; pending: number };
}

export interface FindUnfinishedOptions {
  stateTablePrefix?: string;
  /** Only jobs on this table (compared case-insensitively, as given to the job). */
  table?: string;
  /** Only jobs whose columns include one of these. */
  columns?: readonly string[];
  /**
   * The lease: a job whose last recorded progress is older than this is `incomplete`, not
   * `running`. Workers record progress with every committed batch. Default 120.
   */
  staleAfterSeconds?: number;
}

/** Default lease: well above one batch's time, even with a throttled KMS. */
export const DEFAULT_STALE_AFTER_SECONDS = 120;

/**
 * The rewrap / migrate jobs of the state tables that are not finished (status `running` or
 * ranges still pending), each `running` or `incomplete` by its heartbeat: the newest
 * `updated_at` of the job row and its checkpoints, which every committed batch moves. A
 * SIGKILLed worker stops moving it, so its job turns `incomplete` once the lease has
 * passed. Heartbeats are written and aged by the database's clock only (this process's
 * clock is never read), so a worker or a reader on a machine whose clock is off is still
 * judged right. Read-only: no lock is taken (a lock probe on the ranges would make a worker's
 * `SKIP LOCKED` claim skip them), nothing is created. `[]` when the state tables do not exist.
 *
 * @example
 * const busy = await findUnfinishedJobs(db, { table: "users", columns: ["email"] });
 * if (busy.some((j) => j.state === "running")) throw new Error("a rewrap is running");
 */
export async function findUnfinishedJobs(
  db: SqlAdapter,
  options: FindUnfinishedOptions = {},
): Promise<UnfinishedJob[]> {
  const prefix = options.stateTablePrefix ?? "envelope_rewrap";
  const t = stateTables(db, prefix);
  for (const suffix of ["jobs", "ranges", "checkpoints"]) {
    if (!(await tableExists(db, `${prefix}_${suffix}`))) return [];
  }
  const { rows } = await db.query(
    `SELECT j.job_id, j.spec, j.status, j.updated_at,
      (SELECT COUNT(*) FROM ${t.ranges} r WHERE r.job_id = j.job_id) AS total,
      (SELECT COUNT(*) FROM ${t.ranges} r WHERE r.job_id = j.job_id AND r.status = 'pending') AS pending,
      (SELECT MAX(c.updated_at) FROM ${t.checkpoints} c WHERE c.job_id = j.job_id) AS beat,
      ${t.now} AS db_now
     FROM ${t.jobs} j ORDER BY j.job_id`,
  );
  const leaseMs = (options.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS) * 1000;
  // `public.users` and `users` name the same table for this guard: matching too much only
  // refuses more, matching too little would let a rotate or retire pass a running job.
  const bare = (name: string) => name.toLowerCase().split(".").at(-1)!;
  const table = options.table === undefined ? undefined : bare(options.table);
  const columns = new Set((options.columns ?? []).map((c) => c.toLowerCase()));
  const out: UnfinishedJob[] = [];
  for (const row of rows) {
    const pending = Number(row.pending ?? 0);
    if (String(row.status) === "done" && pending === 0) continue;
    const spec = JSON.parse(String(row.spec)) as JobSpec;
    if (table !== undefined && bare(spec.table) !== table) continue;
    if (columns.size > 0 && !spec.columns.some((c) => columns.has(c.toLowerCase()))) continue;
    // ISO strings of one format: the greater string is the later time. Both it and db_now
    // come from the database's clock, so the difference is the same on every machine.
    const beats = [row.updated_at, row.beat].filter((v) => v !== null && v !== undefined);
    const last = beats.map(String).sort().at(-1) ?? "";
    const at = Date.parse(last);
    const now = Date.parse(String(row.db_now));
    const idleMs =
      Number.isNaN(at) || Number.isNaN(now) ? Number.POSITIVE_INFINITY : Math.max(0, now - at);
    // Stopped cleanly (Ctrl-C) and no batch committed since by another process of the job.
    const stopped =
      String(row.status) === "stopped" &&
      !(row.beat != null && String(row.beat) > String(row.updated_at));
    out.push({
      jobId: String(row.job_id),
      spec,
      state: !stopped && idleMs <= leaseMs ? "running" : "incomplete",
      lastProgressAt: last,
      idleSeconds: Number.isFinite(idleMs) ? Math.round(idleMs / 1000) : -1,
      ranges: { total: Number(row.total ?? 0), pending },
    });
  }
  return out;
}
