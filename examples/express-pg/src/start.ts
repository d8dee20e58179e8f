import type { AddressInfo } from "node:net";
import { createBlindIndexer } from "@envelope/records";
import pg from "pg";
import { createApp } from "./app.js";
import { blindIndexKeys } from "./keys/blind-index-key.js";
import { exampleEnvelope } from "./keys/envelope-config.js";
import { LiveEnvelope, watchKeyRing } from "./keys/live-envelope.js";
import { jsonLogger, type Logger } from "./log.js";
import { ensureSchema } from "./schema.js";
import { loadSettings } from "./settings.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface RunningServer {
  /** `http://127.0.0.1:<port>` (or the HOST it listens on) */
  url: string;
  port: number;
  /** Stops watching keys, closes the HTTP server and the pool. */
  close(): Promise<void>;
}

/**
 * Everything `pnpm start` does, from environment variables: settings, PostgreSQL pool,
 * schema, keys (ENVELOPE_ENCRYPT_KEYS, or the generated local key ring, reloaded when
 * `rotate` changes it), blind-index key, then listen.
 *
 * @example
 * const server = await startServer({ ...process.env, PORT: "0" });
 */
export async function startServer(
  env: Env = process.env,
  log: Logger = jsonLogger,
): Promise<RunningServer> {
  const settings = loadSettings(env);
  const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: 10 });
  // An idle client losing its connection must not crash the process.
  pool.on("error", (error) =>
    log({ event: "pool error", code: (error as { code?: string }).code ?? "UNKNOWN" }),
  );
  let stopWatching = () => {};
  try {
    await ensureSchema(pool, settings.table);
    const { envelope, source, created } = await exampleEnvelope(env, settings.keysDir);
    if (created) log({ event: "generated local RSA key", keys: envelope.describe().encrypt });
    const live = new LiveEnvelope(envelope);
    if (source === "key-ring") {
      stopWatching = watchKeyRing(settings.keysDir, env, live, (result) =>
        result.ok
          ? log({ event: "keys reloaded", keys: result.encrypt })
          : log({ event: "keys reload failed", code: result.code }),
      );
    }
    const blindIndex = createBlindIndexer({ keys: await blindIndexKeys(env, settings.keysDir) });
    const app = createApp({ pool, envelope: live, blindIndex, table: settings.table, log });
    const server = app.listen(settings.port, settings.host);
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    const { port } = server.address() as AddressInfo;
    log({ event: "listening", port, table: settings.table, keys: envelope.describe().encrypt });
    return {
      url: `http://${settings.host === "0.0.0.0" ? "127.0.0.1" : settings.host}:${port}`,
      port,
      async close() {
        stopWatching();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await pool.end();
      },
    };
  } catch (error) {
    stopWatching();
    await pool.end().catch(() => {});
    throw error;
  }
}
