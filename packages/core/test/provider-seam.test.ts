import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  cachesUnwrap,
  checkRetryOptions,
  configFromEnv,
  defineProviderFactory,
  Envelope,
  type KeyProvider,
  localAesFactory,
  localAesProvider,
  ProviderError,
  providerCapabilities,
  registerProvider,
} from "../src/index.js";
import { failure } from "../src/testing/index.js";

const thrown = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected a throw");
};

describe("registerProvider", () => {
  it("refuses to replace a built-in scheme silently", () => {
    for (const scheme of ["local-aes", "aws-kms", "azure-kv", "vault-transit", "local-rsa"]) {
      const e = thrown(() => registerProvider(scheme, async () => localAesFactory));
      expect(e.code).toBe("ENVELOPE_BAD_CONFIG");
      expect(e.message).toContain("override: true");
    }
  });
  it("replaces one with { override: true }, and takes new schemes as before", () => {
    registerProvider("local-aes", async () => localAesFactory, { override: true });
    registerProvider("my-kms-seam", async () => localAesFactory);
  });
});

describe("checkRetryOptions: one validator for every provider", () => {
  it.each([
    [{ attempts: 0 }, "retry.attempts"],
    [{ attempts: 11 }, "retry.attempts"],
    [{ timeoutMs: 0 }, "retry.timeoutMs"],
    [{ baseDelayMs: -1 }, "retry.baseDelayMs"],
    [{ maxDelayMs: 1.5 }, "retry.maxDelayMs"],
    [{ tries: 3 }, "retry.tries"],
    ["3", "retry"],
  ])("refuses %j naming %s", (value, field) => {
    const e = thrown(() => checkRetryOptions(value, "my-kms")) as unknown as {
      code: string;
      details: { field: string };
    };
    expect(e.code).toBe("ENVELOPE_BAD_CONFIG");
    expect(e.details.field).toBe(field);
  });
  it("accepts a valid one and undefined", () => {
    expect(checkRetryOptions({ attempts: 2, timeoutMs: 5 }, "x")).toEqual({
      attempts: 2,
      timeoutMs: 5,
    });
    expect(checkRetryOptions(undefined, "x")).toEqual({});
  });
});

describe("defineProviderFactory", () => {
  const seen: Record<string, unknown>[] = [];
  const factory = defineProviderFactory({
    scheme: "seam-kms",
    options: ["keys", "kmsContext", "retry"],
    deprecatedOptions: { context: "kmsContext", timeoutMs: "retry.timeoutMs" },
    uriOptions: { kmsContext: "kmsContext", timeoutMs: "integer", strict: "boolean" },
    deprecatedUriOptions: { timeout_ms: "timeoutMs" },
    uriShape: "seam-kms://env/VAR",
    fromUri: (_location, query) => ({
      keys: randomBytes(32),
      ...(query.kmsContext ? { kmsContext: query.kmsContext } : {}),
      ...(query.timeoutMs ? { retry: { timeoutMs: query.timeoutMs } } : {}),
    }),
    create: (options) => {
      seen.push(options);
      return localAesProvider({ keys: options.keys as Buffer });
    },
  });

  it("refuses unknown config options, listing the known ones", async () => {
    const e = await failure(factory.fromConfig({ provider: "seam-kms", kyes: "x" }));
    expect(e.message).toContain('unknown option "kyes"');
    expect(e.message).toContain("keys, kmsContext, retry");
  });
  it("maps deprecated aliases (nested too) and refuses both names at once", async () => {
    await factory.fromConfig({
      provider: "seam-kms",
      keys: randomBytes(32),
      context: "none",
      timeoutMs: 7,
    });
    expect(seen.at(-1)).toMatchObject({ kmsContext: "none", retry: { timeoutMs: 7 } });
    const e = await failure(
      factory.fromConfig({
        provider: "seam-kms",
        keys: "k",
        timeoutMs: 7,
        retry: { timeoutMs: 8 },
      }),
    );
    expect(e.message).toContain("not both");
  });
  it("parses typed URI options; a comma list stays one option", async () => {
    await factory.fromUri("seam-kms://env/X?kmsContext=table,column&timeout_ms=50", {});
    expect(seen.at(-1)).toMatchObject({
      kmsContext: ["table", "column"],
      retry: { timeoutMs: 50 },
    });
  });
  it.each([
    ["seam-kms://env/X?nope=1", 'URI option "nope" is unknown'],
    ["seam-kms://env/X?timeoutMs=abc", "positive integer"],
    ["seam-kms://env/X?strict=yes", "true or false"],
    ["seam-kms://env/X?timeoutMs=1&timeoutMs=2", "more than once"],
    ["other://env/X", "is not a seam-kms:// URI"],
  ])("%s: typed error", async (uri, message) => {
    const e = await failure(factory.fromUri(uri, {}));
    expect(e.code).toBe("ENVELOPE_BAD_CONFIG");
    expect(e.message).toContain(message);
  });
});

describe("capabilities and cache policy", () => {
  it("names what a provider can do, and the core decides what it caches", () => {
    const local = localAesProvider({ keys: randomBytes(32) });
    expect(providerCapabilities(local)).toEqual([]);
    expect(cachesUnwrap(local)).toBe(true);
    expect(cachesUnwrap({ ...local, id: "hierarchical" })).toBe(false);
    expect(cachesUnwrap({ ...local, skipUnwrapCache: true })).toBe(false);
  });
});

describe("ENVELOPE_ENCRYPT_KEYS with a comma inside a URI option (issue 14 item 8)", () => {
  const arn = "arn:aws:kms:eu-west-1:111122223333:alias/pii";
  it("keeps kmsContext=table,column inside its URI", () => {
    const config = configFromEnv({
      ENVELOPE_ENCRYPT_KEYS: `aws-kms://${arn}?kmsContext=table,column,local-aes://env/K`,
    });
    expect(config.encrypt).toEqual([
      `aws-kms://${arn}?kmsContext=table,column`,
      "local-aes://env/K",
    ]);
  });
  it("names the problem when a space cut a URI option", () => {
    const e = thrown(() =>
      configFromEnv({ ENVELOPE_ENCRYPT_KEYS: `aws-kms://${arn}?kmsContext=table, column` }),
    );
    expect(e.code).toBe("ENVELOPE_BAD_CONFIG");
    expect(e.message).toContain("item 2 is not a key URI");
    expect(e.message).toContain("kmsContext=table,column");
  });
});

describe("when every key fails, the error lists each provider tried (issue 14 item 8)", () => {
  it("names each provider with its code", async () => {
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    const writer = new Envelope({
      encrypt: [localAesProvider({ keys: keyA }), localAesProvider({ keys: keyB })],
      cache: false,
    });
    const sealed = await writer.encrypt("x");
    const failing = (
      key: Buffer,
      code: "ENVELOPE_KMS_THROTTLED" | "ENVELOPE_KMS_ACCESS_DENIED",
    ): KeyProvider => {
      const inner = localAesProvider({ keys: key });
      return {
        ...inner,
        id: "local-aes",
        keyRef: inner.keyRef,
        unwrap: async () => {
          throw new ProviderError(code, `local-aes unwrap failed: ${code}`);
        },
      };
    };
    const reader = new Envelope({
      encrypt: failing(keyA, "ENVELOPE_KMS_THROTTLED"),
      decrypt: [failing(keyB, "ENVELOPE_KMS_ACCESS_DENIED")],
      cache: false,
    });
    const e = await failure(reader.decrypt(sealed));
    expect(e.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(e.message).toContain("Every key tried failed (2)");
    expect(e.message).toContain("ENVELOPE_KMS_THROTTLED");
    expect(e.message).toContain("ENVELOPE_KMS_ACCESS_DENIED");
    expect(e.details.tried).toBe(2);
  });
});
