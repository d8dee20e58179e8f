/**
 * Attack review of today's core changes: degenerate Ed25519 keys (crypto/ed25519.ts,
 * signature.ts, signing-keys.ts), the plain-object context check (format/context.ts), the
 * de-duplicated decrypt providers (keyring/candidates.ts). Each test asserts the SAFE or
 * documented outcome; `it.fails` marks a finding (see its comment).
 */
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { runInNewContext } from "node:vm";
import {
  ConfigError,
  createEnvelope,
  DecryptionError,
  decodeEnvelope,
  Envelope,
  generateSigningKeyPair,
  ProviderError,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const context = { table: "users", column: "ssn", id: "42" };
const writerKeys = generateSigningKeyPair();
const SIGNER_AT = 67;
const SIGNATURE_AT = 99;

const P = (1n << 255n) - 19n;
const le = (n: bigint) => {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
// y of the 8 torsion points (derived, not copied from the library's list): 1 (order 1),
// p − 1 (order 2), 0 (order 4, both x), and the order-8 y and its negation.
const Y8 = 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n;
const SMALL = [0n, 1n, P - 1n, Y8, P - Y8];
const weakKeys: Buffer[] = [];
for (const y of SMALL)
  for (const sign of [0, 0x80]) {
    const b = le(y);
    b[31]! |= sign;
    weakKeys.push(b);
  }
// Every non-canonical y (p ≤ y < 2^255), with both sign bits.
for (let y = P; y < 1n << 255n; y++)
  for (const sign of [0, 0x80]) {
    const b = le(y);
    b[31]! |= sign;
    weakKeys.push(b);
  }

describe("today: degenerate Ed25519 signer keys", () => {
  it("the derived order-8 y is a point of order 8 (sanity of the test's own list)", () => {
    // Its library spelling, from libsodium's blocklist.
    expect(le(Y8).toString("hex")).toBe(
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    );
    expect(le(P - Y8).toString("hex")).toBe(
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    );
  });

  it("every small-order and non-canonical signer key (both sign bits) is BAD_SIGNATURE for an unpinned reader, with no KMS call", async () => {
    const provider = countingProvider();
    const writer = new Envelope({
      encrypt: provider,
      signing: { key: writerKeys.privateKeyPem },
      cache: false,
    });
    const reader = new Envelope({ encrypt: provider, cache: false });
    const sealed = Buffer.from(await writer.encrypt("secret", { context, output: "binary" }));
    expect(String(await reader.decrypt(sealed, { context }))).toBe("secret");
    const identity = le(1n);
    let acceptedByRuntime = 0;
    for (const weak of weakKeys) {
      const forged = Buffer.from(sealed);
      weak.copy(forged, SIGNER_AT);
      // R = identity, S = 0: verifies for every message whose k·A is the identity.
      identity.copy(forged, SIGNATURE_AT);
      forged.fill(0, SIGNATURE_AT + 32, SIGNATURE_AT + 64);
      provider.reset();
      expectEnvelopeError(
        await rejection(reader.decrypt(forged, { context })),
        DecryptionError,
        "ENVELOPE_BAD_SIGNATURE",
      );
      expect(provider.calls.unwrap).toBe(0);
      // Informational: whether this runtime's OpenSSL alone would have accepted it.
      try {
        const key = createPublicKey({
          key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), weak]),
          format: "der",
          type: "spki",
        });
        if (verify(null, Buffer.from("any"), key, forged.subarray(SIGNATURE_AT, SIGNATURE_AT + 64)))
          acceptedByRuntime++;
      } catch {}
    }
    expect(acceptedByRuntime).toBeGreaterThanOrEqual(0);
  });

  it("no small-order or non-canonical key can be pinned, as hex or as PEM", () => {
    const provider = countingProvider();
    for (const weak of weakKeys) {
      expectEnvelopeError(
        thrown(
          () =>
            new Envelope({
              encrypt: provider,
              trustedSigners: [`ed25519:${weak.toString("hex")}`],
            }),
        ),
        ConfigError,
        "ENVELOPE_BAD_CONFIG",
      );
    }
    const pem = createPublicKey({
      key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), le(1n)]),
      format: "der",
      type: "spki",
    }).export({ format: "pem", type: "spki" }) as string;
    expectEnvelopeError(
      thrown(() => new Envelope({ encrypt: provider, trustedSigners: [pem] })),
      ConfigError,
      "ENVELOPE_BAD_CONFIG",
    );
  });
});

describe("today: the plain-object context check", () => {
  const sealUnder = async (ctx: object) => {
    const provider = countingProvider();
    const env = new Envelope({ encrypt: provider, cache: false });
    const sealed = await env.encrypt("x", { context: ctx as Record<string, string> });
    // Opens under {} only if the fields were dropped.
    return env.decrypt(sealed, { context: {} }).then(
      () => "sealed under {}",
      () => "fields kept",
    );
  };
  const refusedOrKept = async (ctx: object) => {
    try {
      return await sealUnder(ctx);
    } catch (error) {
      return (error as { code?: string }).code ?? "threw";
    }
  };

  it("held: a depth-3 null-prototype chain, an inherited enumerable getter, a vm class instance are refused; a vm plain object keeps its fields", async () => {
    const depth3 = Object.create(Object.create(Object.create(null)));
    depth3.own = "1";
    expect(await refusedOrKept(depth3)).toBe("ENVELOPE_BAD_INPUT");
    const getterProto = Object.create(null);
    Object.defineProperty(getterProto, "tenant", { get: () => "a", enumerable: true });
    expect(await refusedOrKept(Object.create(getterProto))).toBe("ENVELOPE_BAD_INPUT");
    expect(
      await refusedOrKept(runInNewContext("new (class C { constructor(){ this.a = '1' } })()")),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(await refusedOrKept(runInNewContext("({ tenant: 'a' })"))).toBe("fields kept");
    expect(
      await refusedOrKept(
        runInNewContext(
          "Object.create(Object.create(null, { t: { value: 'a', enumerable: true } }))",
        ),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
  });

  // Was FINDING (fixed: context.ts plainPrototype also wants Object.prototype's own
  // hasOwnProperty). It was (low; format/context.ts L65): the check counts only the prototype's
  // *enumerable* keys. A null-prototype parent with a non-enumerable field passes, so
  // `ctx.tenant` reads "a" in the caller's code while the value is sealed under {} — the
  // doc above snapshotContext promises `Object.create(proto)` with inherited properties is
  // BAD_INPUT. (Object.getOwnPropertyNames(proto) would see it; Object.prototype's own
  // names would then need telling apart, e.g. by comparing with a known realm's list.)
  it("an object inheriting a non-enumerable field from a null-prototype parent is refused", async () => {
    const parent = Object.create(null);
    Object.defineProperty(parent, "tenant", { value: "a", enumerable: false });
    const ctx = Object.create(parent);
    expect(ctx.tenant).toBe("a");
    expect(await refusedOrKept(ctx)).toBe("ENVELOPE_BAD_INPUT");
  });

  // Was FINDING (fixed with the one above; a Proxy that also fakes a hasOwnProperty method
  // can still lie). It was (low; caller-built only; format/context.ts L65): a Proxy as the prototype
  // answers getPrototypeOf → null and ownKeys → [], so the check passes while `ctx.tenant`
  // is inherited; sealed under {}. A Proxy can lie to any reflective check: noted, not
  // fixable by a better test of the prototype.
  it("an object inheriting fields from a Proxy that hides them is refused", async () => {
    const target = Object.create(null);
    target.tenant = "a";
    const ctx = Object.create(new Proxy(target, { ownKeys: () => [] }));
    expect(ctx.tenant).toBe("a");
    expect(await refusedOrKept(ctx)).toBe("ENVELOPE_BAD_INPUT");
  });

  // Was FINDING (fixed: the prototype checks run in a try, a throw is BAD_INPUT). It was
  // (low; format/context.ts L65, new today): `Object.keys(proto)` runs a Proxy
  // prototype's ownKeys trap; a trap that throws escapes as an untyped Error instead of
  // ENVELOPE_BAD_INPUT (typed errors with stable codes).
  it("a context whose prototype's ownKeys trap throws is ENVELOPE_BAD_INPUT, not an untyped error", async () => {
    const ctx = Object.create(
      new Proxy(Object.create(null), {
        ownKeys() {
          throw new Error("trap");
        },
      }),
    );
    expect(await refusedOrKept(ctx)).toBe("ENVELOPE_BAD_INPUT");
  });

  // A plain literal's prototype is this realm's Object.prototype, recognised by identity:
  // a field planted there (prototype pollution) is not the caller's context and is not
  // read (own fields only), and it does not make every context fail either.
  it("with an enumerable field planted on Object.prototype (prototype pollution), a plain literal keeps its own fields", async () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = "x";
    try {
      expect(await refusedOrKept({ tenant: "a" })).toBe("fields kept");
    } finally {
      delete proto.polluted;
    }
    expect(await refusedOrKept({ tenant: "a" })).toBe("fields kept");
  });
});

describe("today: de-duplicated decrypt providers", () => {
  const failing = (keyRef = "dup") => {
    const inner = countingProvider({ keyRef });
    let unwraps = 0;
    const p = {
      id: inner.id,
      keyRef: inner.keyRef,
      handles: (e: Parameters<typeof inner.handles>[0]) => inner.handles(e),
      wrap: inner.wrap.bind(inner),
      async unwrap() {
        unwraps++;
        throw new ProviderError("ENVELOPE_KMS_UNAVAILABLE", "down");
      },
    };
    return { p, inner, count: () => unwraps };
  };

  it("held: one provider object under encrypt and decrypt (twice) is tried once per entry; readiness lists it once, as encrypt", async () => {
    const { p, inner, count } = failing();
    const writer = new Envelope({ encrypt: inner, cache: false });
    const sealed = await writer.encrypt("x", { context });
    const reader = new Envelope({ encrypt: p, decrypt: [p, p], cache: false });
    await rejection(reader.decrypt(sealed, { context }));
    expect(count()).toBe(1);
    const report = await reader.check({ timeoutMs: 2000 });
    expect(report.providers.map((r) => r.role)).toEqual(["encrypt"]);
  });

  // Was FINDING (low; fixed where it arises: createEnvelope resolves one provider per key
  // URI). The de-duplication is by object identity, and the same key given twice as two
  // objects (the encrypt key's URI also listed in ENVELOPE_DECRYPT_KEYS: resolveKey built a
  // new provider each time) was unwrapped twice per entry. Two objects built by hand stay
  // two providers (they may differ in what they reach: endpoint, credentials).
  it("the same key URI under encrypt and decrypt (createEnvelope) is one provider, tried once per entry", async () => {
    const env = { K: randomBytes(32).toString("base64") };
    const outcomes: string[] = [];
    const reader = await createEnvelope(
      {
        encrypt: "local-aes://env/K",
        decrypt: ["local-aes://env/K"],
        cache: false,
        onAudit: (event) => {
          if (event.operation === "unwrap") outcomes.push(event.outcome);
        },
      },
      env,
    );
    const sealed = Buffer.from(await reader.encrypt("x", { context, output: "binary" }));
    const entry = decodeEnvelope(sealed).entries[0]!;
    const at = sealed.indexOf(Buffer.from(entry.wrapped));
    sealed.writeUInt8(sealed.readUInt8(at + 3) ^ 0x01, at + 3); // the wrapped key no longer unwraps
    outcomes.length = 0;
    const failed = (await rejection(reader.decrypt(sealed, { context }))) as { code?: string };
    expect(failed.code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(outcomes).toEqual(["failure"]);
  });
});
