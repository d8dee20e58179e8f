import { describe, expect, it } from "vitest";
import { keyPolicy } from "../src/key-policy.js";
import { type KmsKeyId, parseKeyId } from "../src/key-ref.js";

const id = (s: string): KmsKeyId => parseKeyId(s)!;
const ACCOUNT = "111122223333";
const arn = (region: string, resource: string, account = ACCOUNT) =>
  `arn:aws:kms:${region}:${account}:${resource}`;
const KEY = "key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MRK = "key/mrk-0123456789abcdef0123456789abcdef";

const policy = (
  keyId: string,
  extra: Partial<Parameters<typeof keyPolicy>[0]> = {},
  learned: ReadonlySet<string> = new Set(),
) => {
  const key = id(keyId);
  return keyPolicy(
    {
      key,
      home: key.region ?? extra.home,
      decryptKeys: [],
      discovery: undefined,
      mrkAware: true,
      ...extra,
    },
    learned,
  );
};

describe("aws-kms key policy (pure: no KMS call)", () => {
  it("a key ARN claims itself only", () => {
    const p = policy(arn("eu-west-1", KEY));
    expect(p.allowed(id(arn("eu-west-1", KEY)))).toBe(true);
    expect(p.allowed(id(arn("eu-west-2", KEY)))).toBe(false);
    expect(p.allowed(id(arn("eu-west-1", KEY, "444455556666")))).toBe(false);
  });

  it("a multi-Region key claims its replicas unless mrkAware is off", () => {
    expect(policy(arn("eu-west-1", MRK)).allowed(id(arn("us-east-1", MRK)))).toBe(true);
    expect(
      policy(arn("eu-west-1", MRK), { mrkAware: false }).allowed(id(arn("us-east-1", MRK))),
    ).toBe(false);
  });

  it("a bare key id claims that key in its home region (any region for an MRK)", () => {
    const p = policy("1234abcd-12ab-34cd-56ef-1234567890ab", { home: "eu-west-1" });
    expect(p.allowed(id(arn("eu-west-1", KEY)))).toBe(true);
    expect(p.allowed(id(arn("eu-west-2", KEY)))).toBe(false);
    const m = policy("mrk-0123456789abcdef0123456789abcdef", { home: "eu-west-1" });
    expect(m.allowed(id(arn("ap-south-1", MRK)))).toBe(true);
  });

  it("an alias claims keys in its account and region, or only learned ones with discovery false", () => {
    const alias = arn("eu-west-1", "alias/pii");
    const other = id(arn("eu-west-1", KEY));
    expect(policy(alias).allowed(other)).toBe(true);
    expect(policy(alias).allowed(id(arn("eu-west-2", KEY)))).toBe(false);
    expect(policy(alias, { discovery: false }).allowed(other)).toBe(false);
    expect(policy(alias, { discovery: false }, new Set([other.raw])).allowed(other)).toBe(true);
  });

  it("decryptKeys and discovery widen what is claimed", () => {
    const elsewhere = id(arn("us-east-1", KEY, "444455556666"));
    const base = arn("eu-west-1", KEY);
    expect(policy(base).allowed(elsewhere)).toBe(false);
    expect(policy(base, { decryptKeys: [elsewhere] }).allowed(elsewhere)).toBe(true);
    expect(policy(base, { discovery: true }).allowed(elsewhere)).toBe(true);
    expect(policy(base, { discovery: { accountIds: ["444455556666"] } }).allowed(elsewhere)).toBe(
      true,
    );
    expect(
      policy(base, { discovery: { accountIds: ["444455556666"], partition: "aws-cn" } }).allowed(
        elsewhere,
      ),
    ).toBe(false);
  });

  it("Decrypt names the configured replica in the home region for an MRK entry", () => {
    const replica = id(arn("us-east-1", MRK));
    const p = policy(arn("eu-west-1", MRK), { decryptKeys: [replica] });
    expect(p.decryptTarget(id(arn("us-east-1", MRK))).raw).toBe(arn("eu-west-1", MRK));
    expect(p.decryptTarget(id(arn("eu-west-1", KEY))).raw).toBe(arn("eu-west-1", KEY));
  });
});
