import { ConfigError, DecryptionError, ProviderError } from "@envelope/core";
import { notLegacy } from "../errors.js";
import { tag } from "../tag.js";
import type { AsyncLegacyDecoder } from "../types.js";

const FORMAT = "pgcrypto";
const ARMOR = "-----BEGIN PGP MESSAGE-----";

/** The part of a `pg` Pool / Client the decoder calls (`$1` placeholders). */
export interface PgQueryable {
  query(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface PgcryptoOptions {
  /** A PostgreSQL connection with the pgcrypto extension (a `pg.Pool`). */
  pool: PgQueryable;
  /** The passphrase given to `pgp_sym_encrypt`. Sent only as a bound parameter. */
  passphrase: string | Uint8Array;
}

/**
 * The shape test: OpenPGP bytes starting with a symmetric-key session key packet (what
 * `pgp_sym_encrypt` returns as bytea: tag 3, new or old packet format), or ASCII armor
 * (`armor(pgp_sym_encrypt(…))` stored as text).
 */
export function looksLikePgcrypto(value: string | Buffer): boolean {
  if (typeof value === "string") return value.trimStart().startsWith(ARMOR);
  if (value.length < 4) return false;
  const first = value[0]!;
  return first === 0xc3 || (first & 0xfc) === 0x8c || value.subarray(0, 27).toString() === ARMOR;
}

/**
 * Values made with pgcrypto's `pgp_sym_encrypt(data, passphrase)`, as bytea or armored
 * text. They are decrypted by PostgreSQL itself (`pgp_sym_decrypt_bytea`, with `dearmor`
 * for armored text), so the decoder is asynchronous. The passphrase travels only as a
 * bound parameter: never in SQL text, an error message or a log line of Envelope. (The
 * server may still log bind parameters: see ROTATION.md.) The decrypted value comes back
 * over that connection: use TLS to a remote server.
 *
 * @example
 * const from = pgcryptoDecoder({ pool: new pg.Pool({ connectionString }), passphrase: env.PGP_PASS });
 */
export function pgcryptoDecoder(options: PgcryptoOptions): AsyncLegacyDecoder {
  const { pool } = options;
  if (!pool || typeof pool.query !== "function") {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "pgcrypto: `pool` must be a pg Pool or Client.", {
      details: { field: "pool" },
    });
  }
  const passphrase =
    typeof options.passphrase === "string"
      ? options.passphrase
      : passphraseText(options.passphrase);
  if (!passphrase) {
    throw new ConfigError("ENVELOPE_BAD_KEY", "pgcrypto: the passphrase is empty.", {
      details: { field: "passphrase" },
    });
  }
  // The functions are called by their schema-qualified names, looked up once in the
  // catalog: an unqualified call resolves through search_path, and a role that can create
  // functions in a schema listed before pgcrypto's (public before `extensions`, or a
  // "$user" schema) could plant its own pgp_sym_decrypt_bytea that receives the passphrase
  // and returns forged plaintext (the CVE-2018-1058 pattern).
  let schema: Promise<string> | undefined;
  const pgcryptoSchema = () => {
    schema ??= findPgcryptoSchema(pool).catch((error) => {
      schema = undefined; // a failed lookup (connection lost) is tried again next value
      throw error;
    });
    return schema;
  };
  return tag({
    format: FORMAT,
    async: true as const,
    matches: looksLikePgcrypto,
    async decode(value: string | Buffer) {
      if (!looksLikePgcrypto(value))
        throw notLegacy(FORMAT, "neither pgp_sym_encrypt bytes nor an armored PGP message");
      const armored = typeof value === "string" || value[0] === 0x2d; // "-"
      const q = await pgcryptoSchema();
      const sql = armored
        ? `SELECT ${q}.pgp_sym_decrypt_bytea(${q}.dearmor($1::pg_catalog.text), $2::pg_catalog.text) AS p`
        : `SELECT ${q}.pgp_sym_decrypt_bytea($1::pg_catalog.bytea, $2::pg_catalog.text) AS p`;
      const arg = armored ? (typeof value === "string" ? value : value.toString("utf8")) : value;
      let rows: Record<string, unknown>[];
      try {
        ({ rows } = await pool.query(sql, [arg, passphrase]));
      } catch (error) {
        throw mapPgError(error);
      }
      const p = rows[0]?.p;
      if (!Buffer.isBuffer(p))
        throw new ProviderError("ENVELOPE_PROVIDER_CONTRACT", "pgcrypto: no bytea came back.");
      return p;
    },
  });
}

/** The schema pgcrypto is installed in, as a quoted identifier (from the catalog, not search_path). */
async function findPgcryptoSchema(pool: PgQueryable): Promise<string> {
  let rows: Record<string, unknown>[];
  try {
    ({ rows } = await pool.query(
      "SELECT n.nspname AS s FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
      [],
    ));
  } catch (error) {
    throw mapPgError(error);
  }
  const name = rows[0]?.s;
  if (typeof name !== "string" || name.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "pgcrypto: the extension is not installed in the database the decoder connects to. Run CREATE EXTENSION IF NOT EXISTS pgcrypto there.",
      { details: { field: "pool" } },
    );
  }
  return `"${name.replace(/"/g, '""')}"`;
}

/** Rebuilds a driver error from safe fields (SQLSTATE and the server's short message). */
function mapPgError(error: unknown): Error {
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : undefined;
  const message = String(e?.message ?? "").slice(0, 200);
  const cause = Object.assign(new Error(message), code ? { code } : {});
  if (code === "39000" && /armor/i.test(message))
    return notLegacy(FORMAT, "corrupt ASCII armor", cause);
  if (code === "39000") {
    return new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      "Could not decrypt a legacy pgcrypto value: wrong passphrase, or the value was altered.",
      { cause },
    );
  }
  if (code === "42883") {
    return new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "pgcrypto: pgp_sym_decrypt_bytea does not exist on this server. Run CREATE EXTENSION IF NOT EXISTS pgcrypto (in the database the decoder connects to).",
      { cause },
    );
  }
  return new ProviderError(
    "ENVELOPE_KMS_UNAVAILABLE",
    `pgcrypto: PostgreSQL could not run the decryption (${code ?? "no SQLSTATE"}). Check the connection; the row is retried on the next run.`,
    { cause, details: { provider: "pgcrypto" } },
  );
}

/** A passphrase given as bytes, read as UTF-8 through a view (no copy in node's pool). */
function passphraseText(bytes: Uint8Array | undefined): string {
  if (!bytes) return "";
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8");
}
