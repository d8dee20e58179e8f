// The client's `suite` option (ENVELOPE_SUITE): which suite a writer picks for unsigned
// values. Reading never depends on it.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  configFromEnv,
  createEnvelope,
  Envelope,
  envelopeFromEnv,
  generateSigningKeyPair,
  localAesProvider,
} from "../src/index.js";

const CONTEXT = { table: "users", column: "email", id: "42" };

describe("writer suite", () => {
  const provider = localAesProvider({ keys: randomBytes(32) });

  it("writes suite 0x01 by default and 0x03 with suite: 3; both read anywhere", async () => {
    const plain = new Envelope({ encrypt: provider });
    const fast = new Envelope({ encrypt: provider, suite: 3 });
    const one = await plain.encrypt("a@example.com", { context: CONTEXT });
    const three = await fast.encrypt("a@example.com", { context: CONTEXT });
    expect(plain.inspect(one).suite).toBe(1);
    expect(plain.inspect(three).suite).toBe(3);
    // A reader's own suite setting does not matter.
    expect(await plain.decrypt(three, { context: CONTEXT, as: "text" })).toBe("a@example.com");
    expect(await fast.decrypt(one, { context: CONTEXT, as: "text" })).toBe("a@example.com");
  });

  it("covers encryptWithDataKey and reused data keys; rewrap keeps the suite", async () => {
    const other = localAesProvider({ keys: randomBytes(32) });
    const fast = new Envelope({
      encrypt: provider,
      decrypt: [other],
      suite: 3,
      dataKeyReuse: { maxMessages: 10 },
    });
    const materials = await fast.generateDataKey({ context: CONTEXT });
    const withKey = fast.encryptWithDataKey(materials, "x", { context: CONTEXT });
    materials.dataKey.fill(0);
    const reused = [
      await fast.encrypt("y", { context: CONTEXT }),
      await fast.encrypt("z", { context: CONTEXT }),
    ];
    for (const v of [withKey, ...reused]) expect(fast.inspect(v).suite).toBe(3);
    const moved = await fast.rewrap(reused[1]!, { to: other, context: CONTEXT });
    expect(fast.inspect(moved).suite).toBe(3);
    expect(await fast.decrypt(moved, { context: CONTEXT, as: "text" })).toBe("z");
  });

  it("signing wins: a signing client writes suite 0x02", async () => {
    const { privateKeyPem } = generateSigningKeyPair();
    const signer = new Envelope({ encrypt: provider, suite: 3, signing: { key: privateKeyPem } });
    const sealed = await signer.encrypt("a", { context: CONTEXT });
    expect(signer.inspect(sealed).suite).toBe(2);
  });

  it("refuses any other suite with a typed error, in options, config and env", async () => {
    for (const suite of [0, 2, 4, "3", null]) {
      expect(() => new Envelope({ encrypt: provider, suite: suite as never })).toThrow(
        expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG", details: { field: "suite" } }),
      );
    }
    const keys = `local-aes://env/ENVELOPE_TEST_SUITE_KEY`;
    const env = { ENVELOPE_TEST_SUITE_KEY: randomBytes(32).toString("base64") };
    await expect(createEnvelope({ encrypt: keys, suite: 2 as never }, env)).rejects.toThrow(
      ConfigError,
    );
    expect(() => configFromEnv({ ENVELOPE_ENCRYPT_KEYS: keys, ENVELOPE_SUITE: "2" })).toThrow(
      expect.objectContaining({ details: { field: "ENVELOPE_SUITE" } }),
    );
  });

  it("reads ENVELOPE_SUITE and the config's suite", async () => {
    const env = {
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/ENVELOPE_TEST_SUITE_KEY",
      ENVELOPE_TEST_SUITE_KEY: randomBytes(32).toString("base64"),
      ENVELOPE_SUITE: "3",
    };
    expect(configFromEnv(env).suite).toBe(3);
    const fromEnv = await envelopeFromEnv(env);
    expect(fromEnv.inspect(await fromEnv.encrypt("a", { context: CONTEXT })).suite).toBe(3);
    const fromConfig = await createEnvelope({ encrypt: env.ENVELOPE_ENCRYPT_KEYS, suite: 3 }, env);
    expect(fromConfig.inspect(await fromConfig.encrypt("a")).suite).toBe(3);
    expect(configFromEnv({ ...env, ENVELOPE_SUITE: "" }).suite).toBeUndefined();
  });
});
