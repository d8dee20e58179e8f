// `pnpm --filter @envelope/example-express-pg rotate [--api http://127.0.0.1:3000]`:
// new local RSA key, rewrap the users table to it while the API keeps serving, retire the
// old key — each step an `envelope` CLI command (printed as it runs).
import { EnvelopeCliError } from "./keys/envelope-cli.js";
import { rotateLocalKey } from "./keys/rotate-local-key.js";
import { loadSettings } from "./settings.js";

const args = process.argv.slice(2);
const apiFlag = args.indexOf("--api");
const settings = loadSettings(process.env);
const apiUrl =
  apiFlag >= 0 ? args[apiFlag + 1] : (process.env.API_URL ?? `http://127.0.0.1:${settings.port}`);

// Ctrl-C reaches the running `envelope` process too: it stops after the batch in flight
// commits its checkpoint and exits 130; no further command is started, and the error
// below says to rerun. A second Ctrl-C quits at once (still safe: every batch is one
// transaction).
const stop = new AbortController();
process.once("SIGINT", () => {
  console.error("\nstopping at the next checkpoint… (Ctrl-C again to quit now)");
  stop.abort();
});

try {
  const report = await rotateLocalKey({
    databaseUrl: settings.databaseUrl,
    table: settings.table,
    keysDir: settings.keysDir,
    apiUrl,
    signal: stop.signal,
    onStep: (s) => {
      switch (s.step) {
        case "cli":
          console.log(`$ ${s.command}`);
          break;
        case "new key":
          console.log(`${s.resumed ? "resuming rotation to" : "new key"} ${s.key}`);
          break;
        case "api reloaded":
          console.log(
            s.via === "health"
              ? `the API at ${apiUrl} now encrypts with the new key`
              : "no API answered on /health; waited for running APIs to reload the key ring",
          );
          break;
        case "pass":
          console.log(
            `pass ${s.pass}: rewrapped ${s.rewrapped} values (already done ${s.skipped}, concurrent writes ${s.conflicts}); ${s.remaining} left under old keys`,
          );
          break;
        case "switched":
          console.log(
            `only ${s.key} is configured now; old key files moved to retired/: ${s.retired.join(", ")}`,
          );
          break;
      }
    },
  });
  console.log(
    JSON.stringify({
      key: report.key,
      passes: report.passes,
      rewrapped: report.rewrapped,
      byKeyRef: report.byKeyRef,
      retired: report.retired,
    }),
  );
} catch (error) {
  const e = error as { code?: string; message?: string };
  console.error(
    e instanceof EnvelopeCliError || e.code?.startsWith("ENVELOPE_")
      ? `rotate failed (${e.code}): ${e.message}`
      : error,
  );
  // 130 after Ctrl-C, like the CLI; rerunning resumes either way.
  process.exit(e instanceof EnvelopeCliError && e.exitCode === 130 ? 130 : 1);
}
