import { randomUUID } from "node:crypto";
import type { Envelope } from "@envelope/core";
import {
  type BlindIndexer,
  createRecordCipher,
  encryptedPg,
  type RecordCipher,
} from "@envelope/records";
import type { Pool, PoolClient } from "pg";
import { ApiError } from "../http/errors.js";
import type { EnvelopeRef } from "../keys/live-envelope.js";
import { ENCRYPTED_COLUMNS } from "../schema.js";
import type { SignupInput } from "./validate.js";

/** A user as the API returns it (decrypted). */
export interface User {
  id: string;
  email: string;
  phone: string | null;
  ssn: string;
  createdAt: string;
  updatedAt: string;
}

type Field = (typeof ENCRYPTED_COLUMNS)[number];
type Row = Record<string, unknown> & { id: string };

export interface UserStoreOptions {
  pool: Pool;
  envelope: EnvelopeRef;
  blindIndex: BlindIndexer;
  table: string;
}

/**
 * The users table through @envelope/records: fields are sealed before they reach SQL and
 * opened after, so nothing in between (SQL text, driver, logs, the table) sees PII.
 */
export class UserStore {
  readonly #pool: Pool;
  readonly #ref: EnvelopeRef;
  readonly #blindIndex: BlindIndexer;
  readonly #table: string;
  #cipher: { envelope: Envelope; cipher: RecordCipher<Field> } | undefined;

  constructor(options: UserStoreOptions) {
    this.#pool = options.pool;
    this.#ref = options.envelope;
    this.#blindIndex = options.blindIndex;
    this.#table = options.table;
  }

  /** Signs a user up. 409 EMAIL_TAKEN when the (normalized) email is already registered. */
  async create(input: SignupInput): Promise<User> {
    const cipher = this.#current();
    const id = randomUUID();
    return this.#tx(async (db) => {
      // Serialize signups of the same email: the check below and the insert are then atomic.
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
        `${this.#table}:${cipher.indexFor("email", input.email)}`,
      ]);
      const sql = encryptedPg(db, cipher);
      if ((await sql.findByBlindIndex(this.#table, "email", input.email)).length > 0) {
        throw new ApiError(409, "EMAIL_TAKEN", "A user with this email already exists.", ["email"]);
      }
      return toUser(await sql.insert(this.#table, { id, ...input }));
    });
  }

  async get(id: string): Promise<User | undefined> {
    const cipher = this.#current();
    const row = await encryptedPg(this.#pool, cipher).findById(this.#table, id);
    return row ? toUser(row) : undefined;
  }

  /**
   * Users whose email equals `email` after normalization (trimmed, lower-cased), found by
   * the blind index under every index key; index false positives are dropped.
   */
  async findByEmail(email: string): Promise<User[]> {
    const rows = await encryptedPg(this.#pool, this.#current()).findByBlindIndex(
      this.#table,
      "email",
      email,
    );
    return rows.map(toUser);
  }

  /**
   * Sets or clears the phone. `cipher.update` normally re-seals only the phone, under the
   * record's data key; if the record is still under a key that no longer encrypts (a
   * rotation is running), it re-seals the whole record under the current key, so a write
   * never lands under a key that is about to be retired. The row lock keeps the columns
   * it returns consistent with what it read.
   */
  async updatePhone(id: string, phone: string | null): Promise<User | undefined> {
    const cipher = this.#current();
    return this.#tx(async (db) => {
      const { rows } = await db.query(`SELECT * FROM "${this.#table}" WHERE id = $1 FOR UPDATE`, [
        id,
      ]);
      const row = rows[0] as Row | undefined;
      if (!row) return undefined;
      const set = await cipher.update(row, { phone });
      const columns = Object.keys(set).filter((c) =>
        ["email", "email_idx", "phone", "ssn"].includes(c),
      );
      const assignments = columns.map((c, i) => `"${c}" = $${i + 2}`).join(", ");
      const updated = await db.query(
        `UPDATE "${this.#table}" SET ${assignments}, updated_at = now() WHERE id = $1 RETURNING *`,
        [id, ...columns.map((c) => set[c] ?? null)],
      );
      return toUser(await cipher.open(updated.rows[0] as Row));
    });
  }

  /** The cipher for the envelope in use now (rebuilt when a key-ring reload replaced it). */
  #current(): RecordCipher<Field> {
    const envelope = this.#ref.current();
    if (this.#cipher?.envelope !== envelope) {
      const cipher = createRecordCipher(
        envelope,
        {
          table: this.#table,
          encrypted: [...ENCRYPTED_COLUMNS],
          blindIndexes: { email: { normalize: "email" } },
        },
        { blindIndex: this.#blindIndex },
      );
      this.#cipher = { envelope, cipher };
    }
    return this.#cipher.cipher;
  }

  async #tx<T>(fn: (db: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

/** An opened row → the API's shape (no blind index, camelCase timestamps). */
function toUser(row: Record<string, unknown>): User {
  return {
    id: row.id as string,
    email: row.email as string,
    phone: (row.phone as string | null) ?? null,
    ssn: row.ssn as string,
    createdAt: (row.created_at as Date).toISOString(),
    updatedAt: (row.updated_at as Date).toISOString(),
  };
}
