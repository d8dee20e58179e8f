import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { loadAesKey, loadFernetKey, loadSecretText, parseSecretSpec } from "@envelope/legacy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type SecretsManagerTestServer,
  startSecretsManagerServer,
} from "../../../test/servers/secrets-manager.js";
import { startVaultKvServer, type VaultKvTestServer } from "../../../test/servers/vault-kv.js";
import { asyncCodeOf } from "./support.js";

describe("legacy key sources: env and file / Docker secret", () => {
  it("reads an AES key from env (hex) and a Fernet key from a 0600 file with a newline", async () => {
    const aes = randomBytes(32);
    expect((await loadAesKey({ env: "K" }, { K: aes.toString("hex") })).equals(aes)).toBe(true);
    const fernetKey = randomBytes(32);
    const dir = mkdtempSync(join(tmpdir(), "legacy-src-"));
    const file = join(dir, "fernet_key");
    writeFileSync(file, `${fernetKey.toString("base64url")}=\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    expect((await loadFernetKey({ file })).equals(fernetKey)).toBe(true);
    expect(await asyncCodeOf(() => loadAesKey({ env: "MISSING" }, {}))).toBe("ENVELOPE_BAD_KEY");
  });
});

describe("AWS Secrets Manager (real SDK client, test server)", () => {
  let sm: SecretsManagerTestServer;
  let client: SecretsManagerClient;
  const current = randomBytes(32);
  const previous = randomBytes(32);
  const custom = randomBytes(32);
  beforeAll(async () => {
    sm = await startSecretsManagerServer();
    client = new SecretsManagerClient({
      region: sm.region,
      endpoint: sm.url,
      credentials: sm.credentials,
      maxAttempts: 2,
    });
    sm.putSecretValue("app/fernet", {
      SecretString: JSON.stringify({ FERNET_KEY: previous.toString("base64url") }),
    });
    sm.putSecretValue("app/fernet", {
      SecretString: JSON.stringify({ FERNET_KEY: current.toString("base64url") }),
    });
    sm.putSecretValue(
      "app/fernet",
      { SecretString: JSON.stringify({ FERNET_KEY: custom.toString("base64url") }) },
      ["LEGACY2019"],
    );
    sm.putSecretValue("app/aes-binary", { SecretBinary: current });
  });
  afterAll(async () => {
    client.destroy();
    await sm.close();
  });

  it("reads AWSCURRENT, AWSPREVIOUS and a custom stage of a JSON secret", async () => {
    const key = (versionStage?: string) =>
      loadFernetKey({
        aws: {
          secretId: "app/fernet",
          field: "FERNET_KEY",
          client,
          ...(versionStage ? { versionStage } : {}),
        },
      });
    expect((await key()).equals(current)).toBe(true);
    expect((await key("AWSPREVIOUS")).equals(previous)).toBe(true);
    expect((await key("LEGACY2019")).equals(custom)).toBe(true);
    expect(sm.requests.map((r) => r.versionStage ?? "default")).toEqual([
      "default",
      "AWSPREVIOUS",
      "LEGACY2019",
    ]);
  });

  it("reads a binary secret as 32 raw bytes", async () => {
    expect(
      (await loadAesKey({ aws: { secretId: "app/aes-binary", client } })).equals(current),
    ).toBe(true);
  });

  it("maps failures to typed errors that never carry the value", async () => {
    sm.putSecretValue("app/denied", { SecretString: "x" });
    sm.deny("app/denied");
    sm.putSecretValue("app/deleted", { SecretString: "x" });
    sm.deleteSecret("app/deleted");
    const code = (secretId: string, extra: Record<string, string> = {}) =>
      asyncCodeOf(() => loadSecretText({ aws: { secretId, client, ...extra } }));
    expect(await code("app/nope")).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(await code("app/fernet", { versionStage: "NOPE" })).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(await code("app/denied")).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(await code("app/deleted")).toBe("ENVELOPE_KEY_DISABLED");
    expect(await code("app/fernet", { field: "OTHER" })).toBe("ENVELOPE_BAD_KEY");
    const badCreds = new SecretsManagerClient({
      region: sm.region,
      endpoint: sm.url,
      credentials: { accessKeyId: sm.credentials.accessKeyId, secretAccessKey: "wrong" },
      maxAttempts: 1,
    });
    expect(
      await asyncCodeOf(() =>
        loadSecretText({ aws: { secretId: "app/fernet", client: badCreds } }),
      ),
    ).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    const unreachable = new SecretsManagerClient({
      region: sm.region,
      endpoint: "http://127.0.0.1:1",
      credentials: sm.credentials,
      maxAttempts: 1,
    });
    expect(
      await asyncCodeOf(() =>
        loadSecretText({ aws: { secretId: "app/fernet", client: unreachable } }),
      ),
    ).toBe("ENVELOPE_KMS_UNAVAILABLE");
    sm.faults = { throttleEvery: 1 };
    try {
      const error = await loadSecretText({ aws: { secretId: "app/fernet", client } }).catch(
        (e) => e,
      );
      expect(error).toMatchObject({ code: "ENVELOPE_KMS_THROTTLED" });
      expect(JSON.stringify(error)).not.toContain(current.toString("base64url"));
    } finally {
      sm.faults = {};
    }
  });

  it("a spec string reaches the same secret", async () => {
    const spec = parseSecretSpec("aws-sm:app/fernet?stage=AWSPREVIOUS#FERNET_KEY");
    expect(spec).toEqual({
      aws: { secretId: "app/fernet", versionStage: "AWSPREVIOUS", field: "FERNET_KEY" },
    });
    if (!("aws" in spec)) throw new Error("not aws");
    expect((await loadFernetKey({ aws: { ...spec.aws, client } })).equals(previous)).toBe(true);
  });
});

describe("Vault KV v2 (node-vault, test server)", () => {
  let vault: VaultKvTestServer;
  const v1 = randomBytes(32);
  const v2 = randomBytes(32);
  beforeAll(async () => {
    vault = await startVaultKvServer();
    vault.put("secret", "app/legacy", { key: v1.toString("hex") });
    vault.put("secret", "app/legacy", { key: v2.toString("hex") });
    vault.put("kv", "team/pgp", { passphrase: "correct horse" }, "ns1");
  });
  afterAll(async () => {
    await vault.close();
  });
  const env = () => ({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.token });

  it("reads the latest version, a given version, and a namespaced mount", async () => {
    expect(
      (await loadAesKey({ vault: { path: "app/legacy", field: "key" } }, env())).equals(v2),
    ).toBe(true);
    expect(
      (await loadAesKey({ vault: { path: "app/legacy", field: "key", version: 1 } }, env())).equals(
        v1,
      ),
    ).toBe(true);
    const spec = parseSecretSpec("vault-kv:kv/team/pgp#passphrase");
    expect(await loadSecretText(spec, { ...env(), VAULT_NAMESPACE: "ns1" })).toBe("correct horse");
    expect(vault.reads).toEqual([
      "/secret/app/legacy@latest",
      "/secret/app/legacy@1",
      "ns1/kv/team/pgp@latest",
    ]);
  });

  it("maps missing, deleted, forbidden and throttled reads to typed errors", async () => {
    const code = (
      source: Parameters<typeof loadSecretText>[0],
      e: Record<string, string> = env(),
    ) => asyncCodeOf(() => loadSecretText(source, e));
    expect(await code({ vault: { path: "app/none", field: "key" } })).toBe(
      "ENVELOPE_KEY_NOT_FOUND",
    );
    vault.put("secret", "app/gone", { key: "x" });
    vault.deleteVersion("secret", "app/gone", 1);
    expect(await code({ vault: { path: "app/gone", field: "key" } })).toBe(
      "ENVELOPE_KEY_NOT_FOUND",
    );
    expect(
      await code(
        { vault: { path: "app/legacy", field: "key" } },
        { ...env(), VAULT_TOKEN: "hvs.wrong" },
      ),
    ).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    const narrow = vault.tokenFor("secret/data/other/");
    expect(
      await code(
        { vault: { path: "app/legacy", field: "key" } },
        { ...env(), VAULT_TOKEN: narrow },
      ),
    ).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(await code({ vault: { path: "app/legacy", field: "nope" } })).toBe("ENVELOPE_BAD_KEY");
    expect(
      await code({ vault: { path: "app/legacy", field: "key" } }, { VAULT_ADDR: vault.url }),
    ).toBe("ENVELOPE_BAD_CONFIG");
    vault.faults = { throttleEvery: 1 };
    try {
      expect(await code({ vault: { path: "app/legacy", field: "key" } })).toBe(
        "ENVELOPE_KMS_THROTTLED",
      );
    } finally {
      vault.faults = {};
    }
  });
});

describe("parseSecretSpec", () => {
  it.each([
    ["env:LEGACY_KEY", { env: "LEGACY_KEY" }],
    ["file:/run/secrets/legacy_key", { file: "/run/secrets/legacy_key" }],
    [
      "aws-sm:arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf?versionId=0123456789abcdef0123456789abcdef",
      {
        aws: {
          secretId: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf",
          versionId: "0123456789abcdef0123456789abcdef",
        },
      },
    ],
    [
      "vault-kv:secret/app/legacy?version=3#key",
      { vault: { mount: "secret", path: "app/legacy", field: "key", version: 3 } },
    ],
  ])("%s", (spec, expected) => {
    expect(parseSecretSpec(spec)).toEqual(expected);
  });

  it.each([
    "LEGACY_KEY",
    "env:",
    "vault-kv:secret/app",
    "vault-kv:app#key",
    "aws-sm:x?color=red",
    "s3:bucket/key",
  ])("refuses %s", (spec) => {
    expect(() => parseSecretSpec(spec)).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
  });
});
