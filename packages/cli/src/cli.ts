#!/usr/bin/env node
import { EXIT_CODES } from "./exit-codes.js";
import { processIo } from "./io.js";
import { main, reportError } from "./program.js";
import { runQuitHooks } from "./quit.js";

// First Ctrl-C: stop after the batch in flight commits its checkpoint. Second: leave now
// (the database state is still consistent: each batch is one transaction), after at most
// 5 s spent marking a running job stopped (quit.ts): the job row waits for the batches in
// flight, which a KMS rate limit on a loaded machine kept past 2 s. Third: leave at once.
const QUIT_HOOKS_MS = 5000;
const controller = new AbortController();
let quitting = false;
process.on("SIGINT", () => {
  if (quitting) process.exit(130);
  if (controller.signal.aborted) {
    quitting = true;
    process.stderr.write("envelope: quitting now; uncommitted batches roll back.\n");
    void runQuitHooks(QUIT_HOOKS_MS).finally(() => process.exit(130));
    return;
  }
  process.stderr.write("\nenvelope: stopping at the next checkpoint… (Ctrl-C again to quit now)\n");
  controller.abort();
});

const json = process.argv.includes("--json");

/**
 * Last resort for an error that escaped `main` (an `error` event, an unhandled rejection):
 * reported like any command's error (typed error, its exit code, JSON under --json), never
 * as Node's crash dump with a stack trace and exit 1.
 */
function fatal(error: unknown): void {
  const io = processIo();
  const stdoutUsable = !process.stdout.destroyed && process.stdout.writable;
  process.exit(reportError(stdoutUsable ? io : { ...io, stdout: io.stderr }, json, error));
}

// The reader went away (`envelope decrypt … | head`): stop quietly, as a shell tool killed
// by SIGPIPE does (exit 141), instead of crashing on an unhandled EPIPE.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(EXIT_CODES.BROKEN_PIPE);
  fatal(error);
});
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

main(process.argv.slice(2), undefined, controller.signal).then((code) => {
  process.exitCode = code;
  // The command is done. A request a KMS client still holds open (one `check --timeout`
  // gave up on, retried by the SDK for up to 30 s) must not keep the process, and so a
  // probe or a script, waiting: leave shortly if nothing else has ended the loop by then.
  setTimeout(() => process.exit(code), 500).unref();
}, fatal);
