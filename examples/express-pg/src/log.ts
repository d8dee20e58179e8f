/**
 * The example's only logger: one JSON line per event, and only the fields listed here —
 * ids, routes, status and error codes. There is deliberately no way to log a body, a
 * query string or an error message (they can carry PII).
 */
export interface LogEntry {
  event: string;
  requestId?: string;
  method?: string;
  /** The route pattern (`/users/:id`), never the URL: `?email=` would land in the log. */
  route?: string;
  status?: number;
  code?: string;
  userId?: string;
  ms?: number;
  keys?: string[];
  table?: string;
  port?: number;
}

export type Logger = (entry: LogEntry) => void;

/** Writes JSON lines to stdout (stderr for failures). */
export const jsonLogger: Logger = (entry) => {
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry });
  if ((entry.status ?? 0) >= 500 || entry.event.endsWith("failed")) console.error(line);
  else console.log(line);
};

/** Discards everything (tests). */
export const silentLogger: Logger = () => {};
