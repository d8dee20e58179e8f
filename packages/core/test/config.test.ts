import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  configFromEnv,
  createEnvelope,
  DecryptionError,
  ENV_VARS,
  Envelope,
  type EnvelopeConfig,
  envelopeFromEnv,
  inspectEnvelope,
  knownSchemes,
  localAesFactory,
  localAesProvider,
  registerProvider,
  resolveKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const hexKey = () => randomBytes(32).toString("hex");
const KEYS = { KEY_A: hexKey(), KEY_B: hexKey(), KEY_C: randomBytes(32).toString("base64") };

/** Asserts a ConfigError with `code` whose message names `field` (and details.field when given). */
function expectConfigError(
  error: unknown,
  code: string,
  field: string,
  detailsField: string | null = field,
) {
  const e = expectEnvelopeError(error, ConfigError, code);
  expect(e.message).toContain(field);
  if (detailsField !== null) expect(e.details.field).toBe(detailsField);
  return e;
}

describe("createEnvelope", () => {
  it("builds a working client from key URIs", async () => {
    const env = await createEnvelope({ encrypt: "local-aes://env/KEY_A" }, KEYS);
    const sealed = await env.encrypt(new Uint8Array([1, 2, 3]));
    expect([...(await env.decrypt(sealed))]).toEqual([1, 2, 3]);
  });

  it("rejects a non-object config", async () => {
    for (const config of [null, undefined, "local-aes://env/KEY_A", 42]) {
      const error = await rejection(createEnvelope(config as unknown as EnvelopeConfig, KEYS));
      expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_CONFIG");
    }
  });

  it("rejects an unknown field, naming it and the known ones", async () => {
    const config = {
      encrypt: "local-aes://env/KEY_A",
      cach: { ttlMs: 1 },
    } as unknown as EnvelopeConfig;
    const e = expectConfigError(
      await rejection(createEnvelope(config, KEYS)),
      "ENVELOPE_BAD_CONFIG",
      "cach",
    );
    expect(e.message).toContain("cache");
  });

  it("requires encrypt", async () => {
    const config = { decrypt: ["local-aes://env/KEY_A"] } as unknown as EnvelopeConfig;
    const e = expectConfigError(
      await rejection(createEnvelope(config, KEYS)),
      "ENVELOPE_BAD_CONFIG",
      "encrypt",
    );
    expect(e.message).toContain("ENVELOPE_ENCRYPT_KEYS");
  });

  it("requires decrypt to be an array", async () => {
    const config = {
      encrypt: "local-aes://env/KEY_A",
      decrypt: "local-aes://env/KEY_B",
    } as unknown as EnvelopeConfig;
    expectConfigError(
      await rejection(createEnvelope(config, KEYS)),
      "ENVELOPE_BAD_CONFIG",
      "decrypt",
    );
  });

  it.each([
    ["not a URI", "just-a-name"],
    ["missing //", "local-aes:/env/KEY_A"],
    ["upper-case scheme", "LOCAL-AES://env/KEY_A"],
    ["empty string", ""],
    ["leading space", " local-aes://env/KEY_A"],
  ])("rejects a bad URI (%s), naming the field", async (_, uri) => {
    const error = await rejection(
      createEnvelope({ encrypt: ["local-aes://env/KEY_A", uri] }, KEYS),
    );
    const e = expectConfigError(error, "ENVELOPE_BAD_CONFIG", "encrypt[1]");
    expect(e.message).toMatch(/key URI/);
  });

  it("rejects an unknown scheme, listing the known ones", async () => {
    const error = await rejection(
      createEnvelope({ encrypt: "local-aes://env/KEY_A", decrypt: ["gcp-kms://x"] }, KEYS),
    );
    const e = expectConfigError(error, "ENVELOPE_BAD_CONFIG", "decrypt[0]");
    expect(e.message).toContain("gcp-kms");
    for (const scheme of ["local-rsa", "aws-kms", "azure-kv", "vault-transit", "local-aes"]) {
      expect(e.message).toContain(scheme);
    }
  });

  it("rejects a provider config object with an unknown provider", async () => {
    const error = await rejection(createEnvelope({ encrypt: { provider: "nope" } }, KEYS));
    expectConfigError(error, "ENVELOPE_BAD_CONFIG", "encrypt[0].provider");
  });

  it.each([
    ["a number", 42],
    ["null", null],
    ["an object without provider", { path: "/x" }],
  ])("rejects a key spec that is %s", async (_, spec) => {
    const error = await rejection(createEnvelope({ encrypt: [spec as never] }, KEYS));
    expectConfigError(error, "ENVELOPE_BAD_CONFIG", "encrypt[0]");
  });

  it("reports a provider whose package cannot be loaded as not installed", async () => {
    registerProvider(
      "missing-kms",
      () => import("@envelope/this-package-does-not-exist" as string),
    );
    const error = await rejection(createEnvelope({ encrypt: "missing-kms://key/1" }, KEYS));
    const e = expectConfigError(error, "ENVELOPE_PROVIDER_NOT_INSTALLED", "encrypt[0]");
    expect(e.message).toContain("missing-kms");
  });

  it("reports a loader that throws synchronously or returns a non-factory", async () => {
    registerProvider("throwing-kms", () => {
      throw new Error("boom");
    });
    const thrownError = await rejection(createEnvelope({ encrypt: "throwing-kms://k" }, KEYS));
    expectConfigError(thrownError, "ENVELOPE_PROVIDER_NOT_INSTALLED", "encrypt[0]");
    registerProvider("empty-kms", async () => ({}) as never);
    const emptyError = await rejection(createEnvelope({ encrypt: "empty-kms://k" }, KEYS));
    expectEnvelopeError(emptyError, ConfigError, "ENVELOPE_BAD_CONFIG");
    expect((emptyError as Error).message).toContain("empty-kms");
  });

  it("prefixes a factory's own error with the field and a redacted URI", async () => {
    const error = await rejection(
      createEnvelope({ encrypt: "local-aes://env/KEY_A", decrypt: ["local-aes://env/NOPE"] }, KEYS),
    );
    const e = expectConfigError(error, "ENVELOPE_BAD_CONFIG", "decrypt[0]");
    expect(e.message).toContain("NOPE");
    expect(e.message).toContain("local-aes://env/NOPE");
  });

  it("wraps a non-Envelope error thrown by a factory as BAD_CONFIG with the cause", async () => {
    const cause = new TypeError("factory bug");
    registerProvider("buggy-kms", async () => ({
      scheme: "buggy-kms",
      fromUri: async () => {
        throw cause;
      },
      fromConfig: async () => {
        throw cause;
      },
    }));
    const e = expectConfigError(
      await rejection(createEnvelope({ encrypt: "buggy-kms://k" }, KEYS)),
      "ENVELOPE_BAD_CONFIG",
      "encrypt[0]",
    );
    expect(e.cause).toBe(cause);
  });

  it("registerProvider refuses invalid scheme names", () => {
    for (const scheme of ["Bad", "with space", "", "1abc", "a_b"]) {
      expectEnvelopeError(
        thrown(() => registerProvider(scheme, async () => localAesFactory)),
        ConfigError,
        "ENVELOPE_BAD_CONFIG",
      );
    }
    expect(knownSchemes()).toContain("local-aes");
  });

  it("validates cache and reuse options up front", async () => {
    const cache = await rejection(
      createEnvelope({ encrypt: "local-aes://env/KEY_A", cache: { maxEntries: 0 } }, KEYS),
    );
    expectConfigError(cache, "ENVELOPE_BAD_CONFIG", "cache.maxEntries", null);
    const reuse = await rejection(
      createEnvelope({ encrypt: "local-aes://env/KEY_A", dataKeyReuse: { maxAgeMs: -5 } }, KEYS),
    );
    expectConfigError(reuse, "ENVELOPE_BAD_CONFIG", "dataKeyReuse.maxAgeMs");
  });
});

describe("Envelope constructor", () => {
  it("needs at least one encrypting provider", () => {
    expectConfigError(
      thrown(() => new Envelope({ encrypt: [] })),
      "ENVELOPE_BAD_CONFIG",
      "encrypt",
    );
  });

  it("names a value that is not a provider", () => {
    const aes = localAesProvider({ keys: randomBytes(32) });
    const e1 = thrown(() => new Envelope({ encrypt: [aes, { id: "x" } as never] }));
    expectConfigError(e1, "ENVELOPE_BAD_CONFIG", "encrypt[1]");
    const e2 = thrown(() => new Envelope({ encrypt: aes, decrypt: [null as never] }));
    expectConfigError(e2, "ENVELOPE_BAD_CONFIG", "decrypt[0]");
  });

  it("refuses more encrypting keys than an envelope can hold", () => {
    const many = Array.from({ length: 17 }, () => countingProvider());
    const error = thrown(() => new Envelope({ encrypt: many }));
    expect(expectEnvelopeError(error).message).toContain("16");
  });
});

describe("configFromEnv / envelopeFromEnv", () => {
  it("reads every variable", () => {
    const config = configFromEnv({
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A, local-aes://env/KEY_B",
      ENVELOPE_DECRYPT_KEYS: "local-aes://env/KEY_C\nlocal-aes://env/KEY_D",
      ENVELOPE_CACHE_MAX_ENTRIES: "50",
      ENVELOPE_CACHE_TTL_MS: "1000",
      ENVELOPE_STORE_CONTEXT: "TRUE",
      ENVELOPE_DATA_KEY_REUSE_MAX_MESSAGES: "10",
      ENVELOPE_DATA_KEY_REUSE_MAX_BYTES: "4096",
      ENVELOPE_DATA_KEY_REUSE_MAX_AGE_MS: "2000",
      ENVELOPE_RSA_KEY: "a user's own variable is fine",
      PATH: "/usr/bin",
    });
    expect(config).toMatchObject({
      encrypt: ["local-aes://env/KEY_A", "local-aes://env/KEY_B"],
      decrypt: ["local-aes://env/KEY_C", "local-aes://env/KEY_D"],
      cache: { maxEntries: 50, ttlMs: 1000 },
      storeContext: true,
      dataKeyReuse: { maxMessages: 10, maxBytes: 4096, maxAgeMs: 2000 },
    });
  });

  it("ENVELOPE_CACHE=off disables the cache; reuse stays off unless asked for", () => {
    const config = configFromEnv({
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A",
      ENVELOPE_CACHE: "off",
    });
    expect(config.cache).toBe(false);
    expect(config.dataKeyReuse).toBeUndefined();
  });

  it("names ENVELOPE_ENCRYPT_KEYS when it is missing or blank", () => {
    for (const value of [undefined, "", " , "]) {
      const error = thrown(() => configFromEnv({ ENVELOPE_ENCRYPT_KEYS: value }));
      expectConfigError(error, "ENVELOPE_BAD_CONFIG", "ENVELOPE_ENCRYPT_KEYS");
    }
  });

  it.each([
    ["ENVELOPE_CACHE", "maybe"],
    ["ENVELOPE_CACHE_MAX_ENTRIES", "abc"],
    ["ENVELOPE_CACHE_MAX_ENTRIES", "0"],
    ["ENVELOPE_CACHE_MAX_ENTRIES", "-1"],
    ["ENVELOPE_CACHE_MAX_ENTRIES", "1.5"],
    ["ENVELOPE_CACHE_TTL_MS", "5m"],
    ["ENVELOPE_CACHE_TTL_MS", "99999999999999999999"],
    ["ENVELOPE_STORE_CONTEXT", "yes"],
    ["ENVELOPE_DATA_KEY_REUSE_MAX_MESSAGES", "lots"],
    ["ENVELOPE_DATA_KEY_REUSE_MAX_BYTES", "1e6"],
    ["ENVELOPE_DATA_KEY_REUSE_MAX_AGE_MS", "0x10"],
  ])("rejects %s=%s, naming the variable", (name, value) => {
    const error = thrown(() =>
      configFromEnv({ ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A", [name]: value }),
    );
    expectConfigError(error, "ENVELOPE_BAD_CONFIG", name);
  });

  it.each([
    "ENVELOPE_CACHE_TTL",
    "ENVELOPE_ENCRYPT_KEY",
    "ENVELOPE_DECRYPT",
    "ENVELOPE_STORE_CONTEXTS",
    "ENVELOPE_DATA_KEY_REUSE",
  ])("rejects the near-miss %s instead of silently ignoring it", (name) => {
    const error = thrown(() =>
      configFromEnv({ ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A", [name]: "1" }),
    );
    const e = expectConfigError(error, "ENVELOPE_BAD_CONFIG", name);
    for (const known of Object.keys(ENV_VARS)) expect(e.message).toContain(known);
  });

  it("envelopeFromEnv builds a client; a bad key in the env names the field", async () => {
    const env = { ...KEYS, ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A" };
    const client = await envelopeFromEnv(env);
    expect(await client.decrypt(await client.encrypt("x"), { as: "text" })).toBe("x");
    const bad = await rejection(envelopeFromEnv({ ...env, KEY_A: "too-short" }));
    expectConfigError(bad, "ENVELOPE_BAD_KEY", "encrypt[0]");
  });

  it("envelopeFromEnv applies overrides", async () => {
    const client = await envelopeFromEnv(
      { ...KEYS, ENVELOPE_ENCRYPT_KEYS: "local-aes://env/KEY_A" },
      { storeContext: true },
    );
    const sealed = await client.encrypt("x", { context: { a: "b" } });
    expect(inspectEnvelope(sealed).contextStored).toBe(true);
  });
});

describe("local-aes keys", () => {
  it.each([
    ["63 hex characters", "a".repeat(63)],
    ["65 hex characters", "a".repeat(65)],
    ["non-hex 64 characters", "g".repeat(64)],
    ["base64 of 31 bytes", randomBytes(31).toString("base64")],
    ["base64 of 33 bytes", randomBytes(33).toString("base64")],
    ["empty", ""],
    ["passphrase", "correct horse battery staple"],
  ])("refuses %s with ENVELOPE_BAD_KEY", async (_, key) => {
    expectEnvelopeError(
      thrown(() => localAesProvider({ keys: key })),
      ConfigError,
      "ENVELOPE_BAD_KEY",
    );
    const error = await rejection(
      createEnvelope({ encrypt: "local-aes://env/K" }, { K: key || " " }),
    );
    expectConfigError(error, "ENVELOPE_BAD_KEY", "encrypt[0]");
  });

  it("refuses byte keys that are not 32 bytes, and an empty key list", () => {
    for (const keys of [new Uint8Array(16), new Uint8Array(33)]) {
      expectEnvelopeError(
        thrown(() => localAesProvider({ keys })),
        ConfigError,
        "ENVELOPE_BAD_KEY",
      );
    }
    expectConfigError(
      thrown(() => localAesProvider({ keys: [] })),
      "ENVELOPE_BAD_CONFIG",
      "key",
      "keys",
    );
  });

  it("accepts hex, base64 and base64url keys, and the same key gives the same key ref", () => {
    const raw = randomBytes(32);
    const refs = [
      raw,
      raw.toString("hex"),
      raw.toString("hex").toUpperCase(),
      raw.toString("base64"),
      raw.toString("base64url"),
    ].map((keys) => localAesProvider({ keys }).keyRef);
    expect(new Set(refs).size).toBe(1);
    expect(refs[0]).toMatch(/^[0-9a-f]{16}$/);
  });

  it("reads a key file, and names an unreadable one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "envelope-core-test-"));
    writeFileSync(join(dir, "hex.key"), `${KEYS.KEY_A}\n`);
    writeFileSync(join(dir, "raw.key"), Buffer.from(KEYS.KEY_A, "hex"));
    const a = await resolveKey(`local-aes://${join(dir, "hex.key")}`);
    const b = await resolveKey(`local-aes://${join(dir, "raw.key")}`);
    expect(a.keyRef).toBe(b.keyRef);
    const error = await rejection(
      resolveKey(`local-aes://${join(dir, "missing.key")}`, "encrypt[0]"),
    );
    expectConfigError(error, "ENVELOPE_BAD_KEY", "missing.key", "encrypt[0]");
  });

  it("refuses a local-aes URI that is neither env/ nor an absolute path", async () => {
    const error = await rejection(resolveKey("local-aes://relative/key", "decrypt[2]"));
    expectConfigError(error, "ENVELOPE_BAD_CONFIG", "decrypt[2]");
  });
});

describe("multi-wrap and decrypt lists", () => {
  const a = localAesProvider({ keys: randomBytes(32) });
  const b = localAesProvider({ keys: randomBytes(32) });

  it("encrypt with [a, b] opens with a client holding only a, or only b", async () => {
    const sealed = await new Envelope({ encrypt: [a, b] }).encrypt("both", {
      context: { id: "1" },
    });
    expect(inspectEnvelope(sealed).entries.map((e) => e.keyRef)).toEqual([a.keyRef, b.keyRef]);
    for (const only of [a, b]) {
      const env = new Envelope({ encrypt: only, cache: false });
      expect(await env.decrypt(sealed, { context: { id: "1" }, as: "text" })).toBe("both");
    }
  });

  it("multi-wrap from config URIs", async () => {
    const env = await createEnvelope(
      { encrypt: ["local-aes://env/KEY_A", "local-aes://env/KEY_B"] },
      KEYS,
    );
    const sealed = await env.encrypt("x");
    const onlyB = await createEnvelope({ encrypt: "local-aes://env/KEY_B" }, KEYS);
    expect(await onlyB.decrypt(sealed, { as: "text" })).toBe("x");
  });

  it("NO_MATCHING_KEY lists the key refs of the envelope and of the client", async () => {
    const c = localAesProvider({ keys: randomBytes(32) });
    const sealed = await new Envelope({ encrypt: [a, b] }).encrypt("x");
    const error = await rejection(new Envelope({ encrypt: c }).decrypt(sealed));
    const e = expectEnvelopeError(error, DecryptionError, "ENVELOPE_NO_MATCHING_KEY");
    for (const ref of [a.keyRef, b.keyRef, c.keyRef]) expect(e.message).toContain(ref);
    expect(e.message).toContain("decrypt");
  });

  it("the decrypt list lets an old key open old data, while new data uses the new key", async () => {
    const oldEnv = await createEnvelope({ encrypt: "local-aes://env/KEY_A" }, KEYS);
    const old = await oldEnv.encrypt("old", { context: { id: "9" } });
    const rotated = await createEnvelope(
      { encrypt: "local-aes://env/KEY_B", decrypt: ["local-aes://env/KEY_A"] },
      KEYS,
    );
    expect(await rotated.decrypt(old, { context: { id: "9" }, as: "text" })).toBe("old");
    const fresh = await rotated.encrypt("new");
    const b2 = await resolveKey("local-aes://env/KEY_B", "key", KEYS);
    expect(inspectEnvelope(fresh).entries.map((e) => e.keyRef)).toEqual([b2.keyRef]);
    // Without the old key in the list, old data no longer opens.
    const newOnly = await createEnvelope({ encrypt: "local-aes://env/KEY_B" }, KEYS);
    expectEnvelopeError(
      await rejection(newOnly.decrypt(old, { context: { id: "9" } })),
      DecryptionError,
      "ENVELOPE_NO_MATCHING_KEY",
    );
    // rewrap with no `to` moves old data to the client's encrypting key.
    const moved = await rotated.rewrap(old, { context: { id: "9" } });
    expect(await newOnly.decrypt(moved, { context: { id: "9" }, as: "text" })).toBe("old");
  });

  it("a local-aes provider with several keys: the first wraps, all unwrap", async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const old = await new Envelope({ encrypt: localAesProvider({ keys: k1 }) }).encrypt("old");
    const ring = localAesProvider({ keys: [k2, k1] });
    const env = new Envelope({ encrypt: ring });
    expect(await env.decrypt(old, { as: "text" })).toBe("old");
    expect(inspectEnvelope(await env.encrypt("new")).entries[0]!.keyRef).toBe(
      localAesProvider({ keys: k2 }).keyRef,
    );
  });
});
