#!/usr/bin/env node
import { EXIT_CODES } from "./exit-codes.js";
import { main } from "./program.js";

// First Ctrl-C: stop after the batch in flight commits its checkpoint. Second: leave now
// (the database state is still consistent: each batch is one transaction).
const controller = new AbortController();
process.on("SIGINT", () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write("\nenvelope: stopping at the next checkpoint… (Ctrl-C again to quit now)\n");
  controller.abort();
});

// The reader went away (`envelope decrypt … | head`): stop quietly, as a shell tool killed
// by SIGPIPE does (exit 141), instead of crashing on an unhandled EPIPE.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(EXIT_CODES.BROKEN_PIPE);
  throw error;
});

main(process.argv.slice(2), undefined, controller.signal).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`envelope: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
