import { randomBytes } from "node:crypto";
import { Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import pg from "pg";

export interface Counted extends KeyProvider {
  readonly calls: { wrap: number; unwrap: number; generateDataKey: number };
  reset(): void;
}

/** A real local-aes provider (AES-KW) that counts calls, as a KMS bill would. */
export function counted(
  inner: KeyProvider = localAesProvider({ keys: randomBytes(32) }),
  options: { generateDataKey?: boolean } = {},
): Counted {
  const calls = { wrap: 0, unwrap: 0, generateDataKey: 0 };
  const provider: Counted = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    calls,
    reset() {
      calls.wrap = 0;
      calls.unwrap = 0;
      calls.generateDataKey = 0;
    },
    async wrap(dataKey, request) {
      calls.wrap++;
      return inner.wrap(dataKey, request);
    },
    async unwrap(entry, request) {
      calls.unwrap++;
      return inner.unwrap(entry, request);
    },
  };
  if (options.generateDataKey) {
    (provider as { generateDataKey?: KeyProvider["generateDataKey"] }).generateDataKey = async (
      request,
    ) => {
      calls.generateDataKey++;
      const dataKey = randomBytes(32);
      return { dataKey, entry: await inner.wrap(dataKey, request) };
    };
  }
  return provider;
}

export function envelopeWith(provider: KeyProvider, decrypt: KeyProvider[] = []): Envelope {
  return new Envelope({ encrypt: provider, decrypt });
}

export const PG_URL = process.env.RECORDS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export function pool(): pg.Pool {
  return new pg.Pool({ connectionString: PG_URL, max: 4 });
}

/** Every total/partial plaintext search in a table dump: true when `needle` appears in clear. */
export async function dumpContains(db: pg.Pool, table: string, needle: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT t::text AS line FROM ${table} t`);
  return rows.some((r: { line: string }) => r.line.includes(needle));
}

export const INDEX_KEY_1 = randomBytes(32).toString("hex");
export const INDEX_KEY_2 = randomBytes(32).toString("hex");

/**
 * The same provider with unwraps that take `ms` (a KMS round trip) and are watched: the
 * unwraps made and the most in flight at once.
 */
export function watchedUnwraps(inner: KeyProvider, ms = 5) {
  const seen = { unwraps: 0, inFlight: 0, max: 0 };
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    async unwrap(entry, request) {
      seen.unwraps++;
      seen.inFlight++;
      seen.max = Math.max(seen.max, seen.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return await inner.unwrap(entry, request);
      } finally {
        seen.inFlight--;
      }
    },
  };
  const reset = () => {
    seen.unwraps = 0;
    seen.max = 0;
  };
  return { provider, seen, reset };
}
