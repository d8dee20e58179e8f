import type { StateTables } from "../state/tables.js";
import type { RunState } from "./run-state.js";
import type { Runtime } from "./runtime.js";

/** What one worker loop works with: the job, its state tables, the run it is part of, its id. */
export interface WorkerScope {
  rt: Runtime;
  t: StateTables;
  state: RunState;
  /** `host:pid:n`, stored with each checkpoint it moves. */
  workerId: string;
}
