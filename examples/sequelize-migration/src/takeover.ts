// The takeover, end to end, while traffic keeps flowing:
//   1. the app before Envelope (EncryptedString, static key) serves and holds data;
//   2. it is switched to Envelope with the transitional read (ENVELOPE_ENCRYPT_KEYS set,
//      LEGACY_ENC_KEY kept): new writes are envelopes, legacy values still read, audited;
//   3. `envelope migrate --apply` converts the legacy values in place (CAS: app writes win);
//   4. a dry run proves nothing legacy is left, and LEGACY_ENC_KEY is removed from config;
//   5. the dump of the table holds no plaintext and no legacy ciphertext.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSealedValue } from "@envelope/records";
import { QueryTypes, Sequelize } from "sequelize";
import { type App, startApp } from "./app.js";
import { dumpTable } from "./dump.js";
import { envelope } from "./envelope-cli.js";
import type { Env, Settings } from "./settings.js";
import { fakeUser, Traffic, type TrafficReport } from "./traffic.js";

export interface TakeoverOptions {
  databaseUrl: string;
  table: string;
  /** The old static key (64 hex) and Envelope's local master key (64 hex). */
  legacyKey: string;
  masterKey: string;
  seedUsers?: number;
  /** How long traffic runs in each stage (ms). */
  stageMs?: number;
  log?: (line: string) => void;
}

export interface TakeoverReport {
  seeded: number;
  legacyReads: Readonly<Record<string, number>>;
  migrate: Record<string, unknown>;
  leftAfter: Record<string, unknown>;
  traffic: TrafficReport;
  final: { rows: number; envelopes: number; readBack: number };
  /** Envelopes seen in the dump, users whose email or SSN appears in clear, legacy JSON values. */
  dump: { bytes: number; envelopes: number; plaintextFound: number; legacyValuesFound: number };
}

export async function runTakeover(o: TakeoverOptions): Promise<TakeoverReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const stageMs = o.stageMs ?? 1500;
  const base: Env = { PATH: process.env.PATH, DATABASE_URL: o.databaseUrl };
  const before: Env = { ...base, LEGACY_ENC_KEY: o.legacyKey };
  const during: Env = {
    ...before,
    ENVELOPE_ENCRYPT_KEYS: "local-aes://env/APP_MASTER_KEY",
    APP_MASTER_KEY: o.masterKey,
  };
  const { LEGACY_ENC_KEY: _removed, ...after } = during;
  const settings = (env: Env): Settings => ({ databaseUrl: o.databaseUrl, table: o.table, env });
  const pause = () => new Promise((r) => setTimeout(r, stageMs));
  const statePrefix = `${o.table}_job`;

  log("1. the app before Envelope: EncryptedString (AES-256-GCM JSON, static key)");
  await dropTable(o.databaseUrl, o.table); // the example starts from an empty legacy table
  let app: App = await startApp(settings(before));
  const traffic = new Traffic(() => app.users);
  const seeded = o.seedUsers ?? 200;
  for (let i = 0; i < seeded; i++) {
    const user = fakeUser(-i - 1);
    traffic.know(await app.users.create(user), user);
  }
  log(`   ${seeded} users written by the legacy app; traffic starts`);
  traffic.start();
  const swap = async (env: Env) => {
    const next = await startApp(settings(env), () => {}); // the example counts; a real app logs
    const old = app;
    app = next; // requests from now on go to the new configuration
    await traffic.drain(); // the request in flight may still be on the old one
    await old.close();
  };

  let legacyReads: Readonly<Record<string, number>>;
  let migrated: { migrate: Record<string, unknown>; leftAfter: Record<string, unknown> };
  try {
    await pause();
    log("2. switch the app to Envelope with the transitional read (legacy key still configured)");
    await swap(during);
    await pause();
    legacyReads = app.legacyReads();
    log(`   legacy values read so far (audited): ${JSON.stringify(legacyReads)}`);

    log("3. envelope migrate --from aes-256-gcm-json --records --apply (traffic continues)");
    const cliEnv: Env = {
      PATH: process.env.PATH,
      ENVELOPE_DB_URL: o.databaseUrl,
      ENVELOPE_ENCRYPT_KEYS: during.ENVELOPE_ENCRYPT_KEYS,
      APP_MASTER_KEY: o.masterKey,
      LEGACY_ENC_KEY: o.legacyKey,
    };
    migrated = await migrateUntilClean(o.table, statePrefix, cliEnv, log, pause);

    log("   nothing legacy left: LEGACY_ENC_KEY removed from the config");
    await swap(after);
    await pause();
  } catch (error) {
    await traffic.stop();
    await app.close();
    throw error;
  }
  const traffic_ = await traffic.stop();
  log(`   traffic: ${JSON.stringify(traffic_)}`);
  await app.close();

  log("5. every value an envelope; the dump holds no plaintext");
  const final = await verifyTable(settings(after), traffic, statePrefix);
  const dump = await dumpTable(o.databaseUrl, o.table);
  const plaintextFound = [...traffic.expected.values()].filter(
    (u) => (u.email && dump.includes(u.email)) || (u.ssn && dump.includes(u.ssn)),
  ).length;
  const dumpFacts = {
    bytes: dump.length,
    envelopes: dump.split("ev1:").length - 1,
    plaintextFound,
    legacyValuesFound: dump.split("authTag").length - 1,
  };
  log(`   ${JSON.stringify({ final, dump: dumpFacts })}`);
  return { seeded, legacyReads, ...migrated, traffic: traffic_, final, dump: dumpFacts };
}

/**
 * The operator's loop: `migrate --apply`, then a dry run must find nothing legacy. A value
 * the app rewrote while the job held it is a CAS conflict (the app's write wins); rerunning
 * `--apply` goes over the table again and picks up anything still legacy.
 */
async function migrateUntilClean(
  table: string,
  statePrefix: string,
  env: Env,
  log: (line: string) => void,
  pause: () => Promise<unknown>,
) {
  const cwd = await mkdtemp(join(tmpdir(), "envelope-takeover-"));
  const args = [
    "migrate",
    "--table",
    table,
    "--column",
    "email,ssn",
    "--pk",
    "id",
    "--from",
    "aes-256-gcm-json",
    "--legacy-key-env",
    "LEGACY_ENC_KEY",
    "--state-prefix",
    statePrefix,
    "--records", // the app reads through @envelope/records: write its field layout
  ];
  try {
    for (let attempt = 1; ; attempt++) {
      const applied = await envelope([...args, "--apply"], env, cwd);
      if (applied.exitCode !== 0) {
        throw new Error(`migrate exited ${applied.exitCode}: ${JSON.stringify(applied.json)}`);
      }
      log(
        `   ${JSON.stringify(applied.json.run)} (conflicts: the app wrote the row meanwhile; its write wins)`,
      );
      await pause();
      log("4. dry run: is anything legacy left?");
      const dry = await envelope(args, env, cwd);
      log(
        `   would rewrite ${dry.json.wouldRewrite}; values by key ${JSON.stringify(dry.json.byKeyRef)}`,
      );
      if (dry.exitCode === 0 && nothingLeft(dry.json))
        return { migrate: applied.json, leftAfter: dry.json };
      if (attempt === 3) throw new Error(`legacy values remain: ${JSON.stringify(dry.json)}`);
      log("3'. legacy values remain: envelope migrate … --apply again");
    }
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

/** A dry run's report says there is nothing to migrate: no value to rewrite, none failing, none legacy. */
function nothingLeft(json: Record<string, unknown>): boolean {
  const run = json.run as { failed?: number } | undefined;
  const byKeyRef = (json.byKeyRef ?? {}) as Record<string, number>;
  return json.wouldRewrite === 0 && run?.failed === 0 && !("legacy" in byKeyRef);
}

/** Raw scan (every value `ev1:`) and a read of every user through the app without the legacy key. */
async function verifyTable(settings: Settings, traffic: Traffic, statePrefix: string) {
  const app = await startApp(settings);
  const sequelize = new Sequelize(settings.databaseUrl, { logging: false });
  try {
    const rows = await sequelize.query<{ email: string | null; ssn: string | null }>(
      `SELECT email, ssn FROM ${settings.table}`,
      { type: QueryTypes.SELECT },
    );
    const values = rows.flatMap((r) => [r.email, r.ssn]).filter((v): v is string => v !== null);
    let readBack = 0;
    for (const [id, want] of traffic.expected) {
      const got = await app.users.get(id);
      if (got?.email === want.email && got?.ssn === want.ssn) readBack++;
    }
    for (const t of ["jobs", "ranges", "checkpoints", "failures"]) {
      await sequelize.query(`DROP TABLE IF EXISTS ${statePrefix}_${t}`);
    }
    return {
      rows: rows.length,
      envelopes: values.filter((v) => isSealedValue(v)).length,
      readBack,
    };
  } finally {
    await app.close();
    await sequelize.close();
  }
}

async function dropTable(databaseUrl: string, table: string): Promise<void> {
  const sequelize = new Sequelize(databaseUrl, { logging: false });
  try {
    await sequelize.query(`DROP TABLE IF EXISTS ${table}`);
  } finally {
    await sequelize.close();
  }
}
