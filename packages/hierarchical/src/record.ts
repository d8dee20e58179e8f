import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { WrappedKey } from "@envelope/core";

/**
 * One intermediate key (IK) as kept in a key store: never the key itself, only the key
 * wrapped by the master provider, plus what is needed to prove the record intact.
 */
export interface IntermediateKeyRecord {
  /** The IK id; envelopes reference it as their entry's key reference. */
  readonly id: string;
  /** Creation time, ms since the epoch (drives age-based rotation and reports). */
  readonly createdAt: number;
  /** The IK wrapped by the master provider (provider id, master key reference, bytes). */
  readonly master: WrappedKey;
  /** HMAC-SHA256(IK, label || id), hex: proves the unwrapped IK is the one created for `id`. */
  readonly keyCheck: string;
  /** SHA-256 over every other field, hex: detects a damaged record without any key. */
  readonly checksum: string;
}

/** A record as a store returns it, with the version used for compare-and-swap updates. */
export interface StoredKeyRecord extends IntermediateKeyRecord {
  /** Starts at 1; every successful `update` increments it. */
  readonly version: number;
}

/** IK ids: `ik-` and 24 hex digits (96 random bits). Short, so each envelope stays small. */
export const IK_ID_PATTERN = /^ik-[0-9a-f]{24}$/;

const KEY_CHECK_LABEL = "envelope:hierarchical:v1:key-check:";
const CHECKSUM_LABEL = "envelope:hierarchical:v1:record:";

/** The key-check value of an IK for its id. */
export function keyCheckOf(ik: Uint8Array, id: string): string {
  return createHmac("sha256", ik).update(KEY_CHECK_LABEL).update(id).digest("hex");
}

/** True when `ik` is the key `record` was created with (constant-time compare). */
export function keyCheckMatches(ik: Uint8Array, record: IntermediateKeyRecord): boolean {
  const want = Buffer.from(keyCheckOf(ik, record.id), "hex");
  const have = Buffer.from(record.keyCheck, "hex");
  return have.length === want.length && timingSafeEqual(have, want);
}

/** The integrity checksum of a record's fields (length-prefixed, so fields cannot shift). */
export function checksumOf(record: Omit<IntermediateKeyRecord, "checksum">): string {
  const hash = createHash("sha256").update(CHECKSUM_LABEL);
  const field = (value: string | Uint8Array) => {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  field(record.id);
  field(String(record.createdAt));
  field(record.master.providerId);
  field(record.master.keyRef);
  field(record.master.wrapped);
  field(record.keyCheck);
  return hash.digest("hex");
}

/** Builds a record with its checksum. */
export function sealRecord(fields: Omit<IntermediateKeyRecord, "checksum">): IntermediateKeyRecord {
  return { ...fields, checksum: checksumOf(fields) };
}

// The limits core's decoder enforces on an envelope's entries (docs/FORMAT.md §8): a master
// entry read from the key store (which whoever can write to the database controls) gets no
// more room, so one planted record cannot make this process hash or send megabytes.
const MAX_PROVIDER_ID_BYTES = 64;
const MAX_KEY_REF_BYTES = 2048;
const MAX_WRAPPED_BYTES = 4096;

/** True when the record's shape is sound and its checksum matches its fields. */
export function recordIntact(record: unknown): record is IntermediateKeyRecord {
  if (typeof record !== "object" || record === null) return false;
  const r = record as Partial<IntermediateKeyRecord>;
  const shapeOk =
    typeof r.id === "string" &&
    IK_ID_PATTERN.test(r.id) &&
    Number.isSafeInteger(r.createdAt) &&
    typeof r.keyCheck === "string" &&
    /^[0-9a-f]{64}$/.test(r.keyCheck) &&
    typeof r.checksum === "string" &&
    typeof r.master === "object" &&
    r.master !== null &&
    typeof r.master.providerId === "string" &&
    typeof r.master.keyRef === "string" &&
    r.master.wrapped instanceof Uint8Array &&
    r.master.wrapped.length > 0 &&
    r.master.wrapped.length <= MAX_WRAPPED_BYTES &&
    Buffer.byteLength(r.master.providerId) <= MAX_PROVIDER_ID_BYTES &&
    Buffer.byteLength(r.master.keyRef) <= MAX_KEY_REF_BYTES;
  if (!shapeOk) return false;
  const want = Buffer.from(checksumOf(r as IntermediateKeyRecord), "hex");
  const have = Buffer.from(r.checksum as string, "hex");
  return have.length === want.length && timingSafeEqual(have, want);
}

/** Plain-JSON form of a record (wrapped bytes as base64), for the file store and exports. */
export interface RecordJson {
  id: string;
  createdAt: number;
  master: { providerId: string; keyRef: string; wrapped: string };
  keyCheck: string;
  checksum: string;
  version: number;
}

export function recordToJson(record: StoredKeyRecord): RecordJson {
  return {
    id: record.id,
    createdAt: record.createdAt,
    master: {
      providerId: record.master.providerId,
      keyRef: record.master.keyRef,
      wrapped: Buffer.from(record.master.wrapped).toString("base64"),
    },
    keyCheck: record.keyCheck,
    checksum: record.checksum,
    version: record.version,
  };
}

/** Parses the JSON form; returns undefined when a field is missing or has the wrong type. */
export function recordFromJson(json: unknown): StoredKeyRecord | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const j = json as Partial<RecordJson>;
  const m = j.master;
  if (typeof m !== "object" || m === null || typeof m.wrapped !== "string") return undefined;
  if (!Number.isSafeInteger(j.version) || (j.version as number) < 1) return undefined;
  return {
    id: j.id as string,
    createdAt: j.createdAt as number,
    master: {
      providerId: m.providerId,
      keyRef: m.keyRef,
      wrapped: Buffer.from(m.wrapped, "base64"),
    },
    keyCheck: j.keyCheck as string,
    checksum: j.checksum as string,
    version: j.version as number,
  };
}

/** A defensive copy, so no caller can change what a store holds. */
export function copyRecord(record: StoredKeyRecord): StoredKeyRecord {
  return { ...record, master: { ...record.master, wrapped: Buffer.from(record.master.wrapped) } };
}
