// `pnpm --filter @envelope/example-express-pg start`: the users API on PORT (default 3000).
import { jsonLogger } from "./log.js";
import { startServer } from "./start.js";

try {
  const server = await startServer(process.env);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      jsonLogger({ event: "stopping" });
      void server.close().then(() => process.exit(0));
    });
  }
} catch (error) {
  // Config errors carry a message written for the operator, with no secrets in it.
  const e = error as { code?: string; message?: string };
  jsonLogger({ event: "start failed", code: e.code ?? "UNEXPECTED_ERROR" });
  console.error(e.code?.startsWith("ENVELOPE_") ? e.message : error);
  process.exit(1);
}
