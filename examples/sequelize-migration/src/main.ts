// `pnpm --filter @envelope/example-sequelize-migration start`: runs the whole takeover once
// against DATABASE_URL (default: the local PostgreSQL), in table USERS_TABLE.
import { randomBytes } from "node:crypto";
import { settingsFrom } from "./settings.js";
import { runTakeover } from "./takeover.js";

const settings = settingsFrom(process.env);
// A demo run makes its own keys when none are given (they live only in this process).
const legacyKey = process.env.LEGACY_ENC_KEY ?? randomBytes(32).toString("hex");
const masterKey = process.env.APP_MASTER_KEY ?? randomBytes(32).toString("hex");

const report = await runTakeover({
  databaseUrl: settings.databaseUrl,
  table: settings.table,
  legacyKey,
  masterKey,
});
const ok =
  report.traffic.mismatches === 0 &&
  Object.keys(report.traffic.errors).length === 0 &&
  report.final.readBack === report.final.rows &&
  report.dump.plaintextFound === 0 &&
  report.dump.legacyValuesFound === 0;
console.log(ok ? "takeover complete: every value is an envelope" : "takeover FAILED: see above");
process.exitCode = ok ? 0 : 1;
