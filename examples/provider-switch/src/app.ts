/**
 * The application code of the provider-switch example. It knows nothing about KMSs: it
 * receives an `Envelope` and seals and opens PII with it. Which master key protects the
 * data (local RSA, AWS KMS, Azure Key Vault, Vault transit) is decided by configuration
 * alone — see `main.ts` and the README.
 */
import { type EncryptionContext, type Envelope, inspectEnvelope } from "@envelope/core";

/** One person's PII, as the application handles it in memory. */
export interface Person {
  readonly id: string;
  readonly email: string;
  readonly phone: string;
  readonly ssn: string;
}

/** The columns that are sealed before they are stored. */
export const PII_FIELDS = ["email", "phone", "ssn"] as const;
export type PiiField = (typeof PII_FIELDS)[number];

/** Sample data (made-up values). */
export const SAMPLE_PEOPLE: readonly Person[] = [
  { id: "1", email: "alice@example.com", phone: "+1 415 555 0101", ssn: "078-05-1120" },
  { id: "2", email: "bob@example.org", phone: "+44 20 7946 0958", ssn: "219-09-9999" },
  { id: "3", email: "chloé@example.fr", phone: "+33 1 23 45 67 89", ssn: "457-55-5462" },
];

/**
 * Where sealed values live: in a real service a table with one text column per PII field.
 * Keys are `<id>:<field>`, values `ev1:…` strings.
 */
export type SealedStore = Map<string, string>;

/** What a round trip reports: ids and key references only, never plaintext. */
export interface RoundTrip {
  /** The people as read back (equal to the input when everything worked). */
  readonly people: Person[];
  /** Distinct `provider:keyRef` of the wrapped keys of the values written. */
  readonly sealedUnder: string[];
  /** Number of values sealed. */
  readonly sealedValues: number;
}

/**
 * The encryption context binds a value to its row and column: a sealed value copied to
 * another row or column does not open.
 */
export function contextOf(id: string, field: PiiField): EncryptionContext {
  return { table: "people", column: field, id };
}

/**
 * Seals each person's PII fields into `store` (text form, ready for a text column).
 *
 * @example
 * const store: SealedStore = new Map();
 * await storePeople(envelope, SAMPLE_PEOPLE, store);
 */
export async function storePeople(
  envelope: Envelope,
  people: readonly Person[],
  store: SealedStore,
): Promise<void> {
  for (const person of people) {
    for (const field of PII_FIELDS) {
      const sealed = await envelope.encrypt(person[field], {
        context: contextOf(person.id, field),
        output: "text",
      });
      store.set(`${person.id}:${field}`, sealed);
    }
  }
}

/**
 * Opens the PII of the people with `ids` from `store`.
 *
 * @example
 * const [alice] = await readPeople(envelope, ["1"], store);
 */
export async function readPeople(
  envelope: Envelope,
  ids: readonly string[],
  store: SealedStore,
): Promise<Person[]> {
  const people: Person[] = [];
  for (const id of ids) {
    const fields: Partial<Record<PiiField, string>> = {};
    for (const field of PII_FIELDS) {
      const sealed = store.get(`${id}:${field}`);
      if (sealed === undefined) throw new Error(`no stored ${field} for person ${id}`);
      fields[field] = await envelope.decrypt(sealed, { context: contextOf(id, field), as: "text" });
    }
    people.push({ id, ...(fields as Record<PiiField, string>) });
  }
  return people;
}

/** Distinct `provider:keyRef` of every wrapped key in `store` (header facts, no secrets). */
export function keysInUse(store: SealedStore): string[] {
  const keys = new Set<string>();
  for (const sealed of store.values()) {
    for (const entry of inspectEnvelope(sealed).entries)
      keys.add(`${entry.provider}:${entry.keyRef}`);
  }
  return [...keys];
}

/**
 * The whole application in one call: seal a few PII values, store them, read them back.
 * The same function runs unchanged whichever provider the `envelope` was configured with.
 *
 * @example
 * const envelope = await envelopeFromEnv(); // ENVELOPE_ENCRYPT_KEYS picks the provider
 * const { people, sealedUnder } = await storeAndReadBack(envelope);
 */
export async function storeAndReadBack(
  envelope: Envelope,
  people: readonly Person[] = SAMPLE_PEOPLE,
  store: SealedStore = new Map(),
): Promise<RoundTrip> {
  await storePeople(envelope, people, store);
  const readBack = await readPeople(
    envelope,
    people.map((p) => p.id),
    store,
  );
  return { people: readBack, sealedUnder: keysInUse(store), sealedValues: store.size };
}
