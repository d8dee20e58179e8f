// `pnpm --filter @envelope/example-express-pg rotate [--api http://127.0.0.1:3000]`:
// new local RSA key, rewrap the users table to it while the API keeps serving, retire the old key.
import { rotateLocalKey } from "./keys/rotate-local-key.js";
import { loadSettings } from "./settings.js";

const args = process.argv.slice(2);
const apiFlag = args.indexOf("--api");
const settings = loadSettings(process.env);
const apiUrl =
  apiFlag >= 0 ? args[apiFlag + 1] : (process.env.API_URL ?? `http://127.0.0.1:${settings.port}`);

try {
  const report = await rotateLocalKey({
    databaseUrl: settings.databaseUrl,
    table: settings.table,
    keysDir: settings.keysDir,
    apiUrl,
    onStep: (s) => {
      switch (s.step) {
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
        case "progress":
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
    }),
  );
} catch (error) {
  const e = error as { code?: string; message?: string };
  console.error(
    e.code?.startsWith("ENVELOPE_") ? `rotate failed (${e.code}): ${e.message}` : error,
  );
  process.exit(1);
}
