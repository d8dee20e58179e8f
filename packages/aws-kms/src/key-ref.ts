import { ConfigError } from "@envelope/core";

/** A KMS key identifier as KMS accepts it, parsed. */
export interface KmsKeyId {
  /** `key-arn`, `alias-arn`, `key-id` (bare id or `mrk-…`), `alias-name` (`alias/…`). */
  readonly kind: "key-arn" | "alias-arn" | "key-id" | "alias-name";
  /** The string as given. */
  readonly raw: string;
  /** ARN parts; absent for bare ids and alias names. */
  readonly partition?: string;
  readonly region?: string;
  readonly account?: string;
  /** `key/<id>` or `alias/<name>` for ARNs; the id or alias name otherwise. */
  readonly resource: string;
  /** True for multi-Region key ids (`mrk-…`). */
  readonly multiRegion: boolean;
}

const ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):((?:key|alias)\/.+)$/;

/**
 * Parses a key id, key ARN, alias name or alias ARN; undefined if it is none of them.
 *
 * @example
 * parseKeyId("arn:aws:kms:eu-west-1:111122223333:alias/pii")?.region // "eu-west-1"
 */
export function parseKeyId(value: string): KmsKeyId | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > 2048) return undefined;
  const arn = ARN.exec(value);
  if (arn) {
    const resource = arn[4]!;
    const isKey = resource.startsWith("key/");
    return {
      kind: isKey ? "key-arn" : "alias-arn",
      raw: value,
      partition: arn[1]!,
      region: arn[2]!,
      account: arn[3]!,
      resource,
      multiRegion: isKey && resource.startsWith("key/mrk-"),
    };
  }
  if (value.startsWith("arn:")) return undefined;
  if (/^alias\/[a-zA-Z0-9/_-]+$/.test(value)) {
    return { kind: "alias-name", raw: value, resource: value, multiRegion: false };
  }
  if (/^(mrk-[0-9a-f]{32}|[0-9a-fA-F-]{36})$/.test(value)) {
    return { kind: "key-id", raw: value, resource: value, multiRegion: value.startsWith("mrk-") };
  }
  return undefined;
}

/** Like parseKeyId, but a ConfigError naming `field` when the value is not a key identifier. */
export function requireKeyId(value: unknown, field: string): KmsKeyId {
  const parsed = typeof value === "string" ? parseKeyId(value.trim()) : undefined;
  if (!parsed) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: ${field} must be a KMS key id, key ARN, alias name (alias/…) or alias ARN, e.g. arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab.`,
      { details: { field } },
    );
  }
  return parsed;
}

/** The bare key id of a key ARN or key id (`1234abcd-…`, `mrk-…`). */
export function keyIdOf(id: KmsKeyId): string | undefined {
  if (id.kind === "key-id") return id.resource;
  if (id.kind === "key-arn") return id.resource.slice("key/".length);
  return undefined;
}

/**
 * True when `a` and `b` name the same key, or (with `mrkAware`) related multi-Region
 * keys: same partition, account and `mrk-` id, any region. Related MRKs share key
 * material, so either one decrypts what the other encrypted.
 */
export function sameKey(a: KmsKeyId, b: KmsKeyId, mrkAware: boolean): boolean {
  if (a.kind !== "key-arn" || b.kind !== "key-arn") return false;
  if (a.raw === b.raw) return true;
  return (
    mrkAware &&
    a.multiRegion &&
    a.resource === b.resource &&
    a.partition === b.partition &&
    a.account === b.account
  );
}
