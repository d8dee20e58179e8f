import type { ConfigFlags } from "./config/load.js";
import type { CliIo } from "./io.js";

/** What every command gets: io, the global flags, and a stop signal (Ctrl-C). */
export interface CliContext {
  io: CliIo;
  signal: AbortSignal;
}

export interface GlobalFlags extends ConfigFlags {
  json?: boolean;
}
