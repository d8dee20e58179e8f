/**
 * Configuration alone switches providers: the example application's one function
 * (`storeAndReadBack` from examples/provider-switch) runs four times, unchanged, with an
 * Envelope built from an environment that differs only in ENVELOPE_ENCRYPT_KEYS and the
 * provider's credentials. Then a migration by config: local-rsa → aws-kms.
 */
import { createEnvelope, type Envelope, envelopeFromEnv } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  keysInUse,
  readPeople,
  SAMPLE_PEOPLE,
  type SealedStore,
  storeAndReadBack,
  storePeople,
} from "../../examples/provider-switch/src/app.js";
import { azureTestCredential, startWorld, type World } from "./fixtures.js";

const VALUES = SAMPLE_PEOPLE.length * 3; // three PII fields per person

let w: World;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

type Env = Record<string, string>;

/** What a deployment would put in its environment, per provider. */
const envFor = {
  "local-rsa": (): Env => ({
    ENVELOPE_ENCRYPT_KEYS: `local-rsa://${w.rsaKeyPaths[0]}`,
  }),
  "aws-kms": (): Env => ({
    // Against real AWS: no ?endpoint=, credentials from the SDK's default chain.
    ENVELOPE_ENCRYPT_KEYS: `aws-kms://${w.awsKey.arn}?endpoint=${encodeURIComponent(w.aws.url)}`,
    AWS_ACCESS_KEY_ID: w.aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: w.aws.credentials.secretAccessKey,
  }),
  "vault-transit": (): Env => ({
    // tls=false only because the test server speaks plain HTTP; real Vault: https (default).
    ENVELOPE_ENCRYPT_KEYS: `vault-transit://${new URL(w.vault.url).host}/transit/keys/pii?tls=false`,
    VAULT_TOKEN: w.vault.rootToken,
  }),
};

/**
 * Azure cannot be pointed at the test server by URI and env alone, so this one case goes
 * through a config object (the same `createEnvelope` path `envelopeFromEnv` ends in):
 *  - the URI takes no options, and the credential is DefaultAzureCredential, which needs
 *    Azure AD (no network here) — a TokenCredential can only be passed in config;
 *  - the test server's self-signed CA must be trusted through an https.Agent
 *    (NODE_EXTRA_CA_CERTS is read only at process start);
 *  - the SDK checks that the challenge's resource matches the vault's domain, which a
 *    server on 127.0.0.1 cannot satisfy without `disableChallengeResourceVerification`
 *    (a test-only client option).
 * The URI path itself is checked below (it builds an azure-kv provider from env).
 */
function azureEnvelope(): Promise<Envelope> {
  return createEnvelope({
    encrypt: {
      provider: "azure-kv",
      keyId: `azure-kv://${new URL(w.azure.url).host}/keys/pii-master`,
      credential: azureTestCredential,
      clientOptions: w.azureClientOptions,
    },
  });
}

const build: Record<string, () => Promise<Envelope>> = {
  "local-rsa": () => envelopeFromEnv(envFor["local-rsa"]()),
  "aws-kms": () => envelopeFromEnv(envFor["aws-kms"]()),
  "azure-kv": azureEnvelope,
  "vault-transit": () => envelopeFromEnv(envFor["vault-transit"]()),
};

/** Calls each server received, without Azure's bearer-challenge handshake. */
function serverCalls() {
  const { challenge: _handshake, ...azure } = w.azure.calls;
  return { aws: { ...w.aws.calls }, azure, vault: { ...w.vault.calls } };
}

describe("one application function, four providers, chosen by configuration", () => {
  it.each([
    ["local-rsa", { aws: {}, azure: {}, vault: {} }],
    ["aws-kms", { aws: { GenerateDataKey: VALUES, Decrypt: VALUES }, azure: {}, vault: {} }],
    // RSA key: one get key, then every wrap is local (no wrapKey); one unwrapKey per value.
    ["azure-kv", { aws: {}, azure: { getKey: 1, unwrapKey: VALUES }, vault: {} }],
    // One datakey/plaintext per value, one decrypt per value.
    ["vault-transit", { aws: {}, azure: {}, vault: { datakey: VALUES, decrypt: VALUES } }],
  ] as const)(
    "%s: storeAndReadBack round-trips, sealed under that provider only",
    async (provider, calls) => {
      const envelope = await build[provider]!();
      expect(envelope.describe().encrypt).toHaveLength(1);
      expect(envelope.describe().encrypt[0]!.startsWith(`${provider}:`)).toBe(true);
      w.resetCalls();

      const result = await storeAndReadBack(envelope);

      expect(result.people).toEqual(SAMPLE_PEOPLE);
      expect(result.sealedValues).toBe(VALUES);
      expect(result.sealedUnder).toHaveLength(1);
      expect(result.sealedUnder[0]!.startsWith(`${provider}:`)).toBe(true);
      expect(serverCalls()).toEqual(calls);
    },
  );

  it("the azure-kv URI in ENVELOPE_ENCRYPT_KEYS selects the Azure provider", async () => {
    const host = new URL(w.azure.url).host;
    const envelope = await envelopeFromEnv({
      ENVELOPE_ENCRYPT_KEYS: `azure-kv://${host}/keys/pii-master`,
    });
    // Built lazily from the URI, no network call yet; using it needs an Azure credential.
    expect(envelope.describe().encrypt).toEqual([`azure-kv:https://${host}/keys/pii-master`]);
  });
});

describe("migration by configuration: local-rsa → aws-kms", () => {
  it("old values still open with the local key, new values go to AWS KMS, rewrap finishes the move", async () => {
    const localUri = envFor["local-rsa"]().ENVELOPE_ENCRYPT_KEYS!;
    const store: SealedStore = new Map();
    const before = SAMPLE_PEOPLE.slice(0, 2);
    const after = SAMPLE_PEOPLE.slice(2);

    // Day 1: local key only.
    await storePeople(await envelopeFromEnv(envFor["local-rsa"]()), before, store);
    const oldValues = new Map(store);
    expect(keysInUse(store).every((k) => k.startsWith("local-rsa:"))).toBe(true);

    // Day 2: the environment changes, the code does not.
    const migrating = await envelopeFromEnv({
      ...envFor["aws-kms"](),
      ENVELOPE_DECRYPT_KEYS: localUri,
    });
    w.resetCalls();
    expect(await readPeople(migrating, ["1", "2"], store)).toEqual(before);
    expect(w.aws.calls).toEqual({}); // old data opened with the local key, no KMS call

    const fresh: SealedStore = new Map();
    await storePeople(migrating, after, fresh);
    expect(keysInUse(fresh)).toEqual([`aws-kms:${w.awsKey.arn}`]);
    expect(w.aws.calls).toEqual({ GenerateDataKey: after.length * 3 });
    for (const [k, v] of fresh) store.set(k, v);
    expect(await readPeople(migrating, ["1", "2", "3"], store)).toEqual(SAMPLE_PEOPLE);

    // Move the old values onto AWS (default target: the encrypting keys), then drop the
    // local key from the config: everything opens with AWS KMS alone.
    for (const [k, v] of oldValues) {
      const [id, column] = k.split(":") as [string, string];
      store.set(k, await migrating.rewrap(v, { context: { table: "people", column, id } }));
    }
    expect(keysInUse(store)).toEqual([`aws-kms:${w.awsKey.arn}`]);
    const awsOnly = await envelopeFromEnv(envFor["aws-kms"]());
    expect(await readPeople(awsOnly, ["1", "2", "3"], store)).toEqual(SAMPLE_PEOPLE);
    // …and the local key alone no longer opens anything.
    const localOnly = await envelopeFromEnv(envFor["local-rsa"]());
    await expect(readPeople(localOnly, ["1"], store)).rejects.toMatchObject({
      code: "ENVELOPE_NO_MATCHING_KEY",
    });
  });
});
