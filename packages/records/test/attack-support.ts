/**
 * The attacker of docs/SECURITY.md ("Database insider writing", "Holder of an encrypt-only
 * key"): writes any stored byte and holds only the local-rsa PUBLIC key (kms:Encrypt is the
 * same). Shared by the attack-*.test.ts files.
 */
import { generateKeyPairSync } from "node:crypto";
import {
  Envelope,
  EnvelopeError,
  inspectEnvelope,
  type KeyProvider,
  type WrappedKey,
} from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { VALUE_TAGS } from "../src/index.js";

const { publicKey, privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
});

/** The application's Envelope (it holds the private key). One per simulated process. */
export const appEnvelope = () =>
  new Envelope({ encrypt: localRsaProvider({ keys: { pem: privateKey } }) });

/** A string field's plaintext as @envelope/records encodes it: type tag, then UTF-8. */
const tagged = (text: string) => Buffer.concat([Buffer.of(VALUE_TAGS.string), Buffer.from(text)]);

export const ctx = (table: string, column: string, id: string) => ({ table, column, id });

/**
 * With only the public key: a fresh data key the attacker knows, wrapped as the app's would
 * be, and a field sealed under it exactly as the app seals (right table, column, id).
 */
export async function plant(table: string, id: string, column: string, value: string) {
  const attacker = new Envelope({ encrypt: localRsaProvider({ keys: { pem: publicKey } }) });
  const m = await attacker.generateDataKey({ context: { table, id } });
  const known = Buffer.from(m.dataKey);
  const sealed = attacker.encryptWithDataKey(m, tagged(value), {
    context: ctx(table, column, id),
    output: "text",
  }) as string;
  m.dataKey.fill(0);
  return { sealed, known };
}

/**
 * Reads a stored value with the data key the attacker knows (a provider that "unwraps"
 * every local-rsa entry to it; core's key commitment and GCM do the rest): the plaintext
 * when the value is sealed under that key, else a typed error.
 */
export async function readWithKnownKey(
  known: Buffer,
  sealed: string,
  context: Record<string, string>,
) {
  const entry = inspectEnvelope(sealed).entries[0]!;
  const knownKey: KeyProvider = {
    id: "local-rsa",
    keyRef: entry.keyRef,
    handles: (e: WrappedKey) => e.providerId === "local-rsa",
    wrap: async () => {
      throw new Error("not used");
    },
    unwrap: async () => Buffer.from(known),
  };
  const plaintext = await new Envelope({ encrypt: knownKey }).decrypt(sealed, { context });
  return plaintext.subarray(1).toString("utf8");
}

/** The typed error code a promise rejects with, "resolved", or a marker for an untyped error. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not an EnvelopeError: ${String(e)}`;
  }
  return "resolved";
}

/**
 * Asserts-friendly: for each encrypted column of a stored row, what the attacker's known key
 * gets out of it ("ENVELOPE_COMMITMENT_MISMATCH" when it is not under that key, "null"
 * when the column is empty).
 */
export async function knownKeyReads(
  known: Buffer,
  table: string,
  row: Record<string, unknown>,
  columns: readonly string[],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of columns) {
    const v = row[c];
    if (v === null || v === undefined) {
      out[c] = "null";
      continue;
    }
    try {
      out[c] = `OPENED:${await readWithKnownKey(known, String(v), ctx(table, c, String(row.id)))}`;
    } catch (e) {
      out[c] = EnvelopeError.isInstance(e) ? e.code : String(e);
    }
  }
  return out;
}

export { MYSQL_URL } from "./support.js";
