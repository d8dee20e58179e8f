import { type KmsKeyId, sameKey } from "./key-ref.js";
import type { DiscoveryOption } from "./options.js";

/** What the key policy decides from: the configured key and the unwrap options. */
export interface KeyPolicySettings {
  readonly key: KmsKeyId;
  readonly home: string | undefined;
  readonly decryptKeys: readonly KmsKeyId[];
  readonly discovery: DiscoveryOption | undefined;
  readonly mrkAware: boolean;
}

/** Which key ARNs a provider may unwrap under, and which ARN it names in Decrypt. Pure. */
export interface KeyPolicy {
  /** The configured key itself: its ARN, its id in the home region, or a key its alias resolved to. */
  isOwn(ref: KmsKeyId): boolean;
  /** `isOwn`, or listed in decryptKeys, or allowed by discovery. */
  allowed(ref: KmsKeyId): boolean;
  /** The key ARN to name in Decrypt: a related MRK replica in the home region if one is configured. */
  decryptTarget(ref: KmsKeyId): KmsKeyId;
}

/**
 * The rules of which entries an aws-kms provider claims (ARN / alias / multi-Region
 * matching), with no KMS call: `learned` holds key ARNs the alias resolved to so far.
 *
 * @example
 * keyPolicy(settings, new Set()).allowed(parseKeyId(entry.keyRef)!)
 */
export function keyPolicy(s: KeyPolicySettings, learned: ReadonlySet<string>): KeyPolicy {
  const { key, home, mrkAware, discovery } = s;
  const keyArns = [...(key.kind === "key-arn" ? [key] : []), ...s.decryptKeys];

  const isOwn = (ref: KmsKeyId): boolean => {
    if (key.kind === "key-arn") return sameKey(key, ref, mrkAware);
    if (key.kind === "key-id") {
      return (
        ref.resource === `key/${key.resource}` &&
        (home === undefined || ref.region === home || (mrkAware && ref.multiRegion))
      );
    }
    if (learned.has(ref.raw)) return true;
    // An alias may have pointed at other keys before: by default accept its account and region.
    return (
      discovery === undefined &&
      (key.partition === undefined || ref.partition === key.partition) &&
      (key.account === undefined || ref.account === key.account) &&
      (home === undefined || ref.region === home)
    );
  };

  return {
    isOwn,
    allowed: (ref) =>
      isOwn(ref) ||
      s.decryptKeys.some((k) => sameKey(k, ref, mrkAware)) ||
      discovery === true ||
      (typeof discovery === "object" &&
        discovery.accountIds.includes(ref.account!) &&
        (discovery.partition === undefined || discovery.partition === ref.partition)),
    decryptTarget: (ref) => {
      if (!mrkAware || !ref.multiRegion || ref.region === home) return ref;
      return keyArns.find((c) => sameKey(c, ref, true) && c.region === home) ?? ref;
    },
  };
}
