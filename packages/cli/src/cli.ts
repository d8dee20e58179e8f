#!/usr/bin/env node
import { main } from "./program.js";

// First Ctrl-C: stop after the batch in flight commits its checkpoint. Second: leave now
// (the database state is still consistent: each batch is one transaction).
const controller = new AbortController();
process.on("SIGINT", () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write("\nenvelope: stopping at the next checkpoint… (Ctrl-C again to quit now)\n");
  controller.abort();
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
