import { randomBytes } from "node:crypto";
import { format, inspect } from "node:util";
import {
  type AuditEvent,
  createEnvelope,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  envelopeFromEnv,
  localAesProvider,
  redactUri,
  resolveKey,
  type WrappedKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { countingProvider } from "./support/counting-provider.js";

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Every surface an error reaches a log or a terminal through. */
function surfaces(error: unknown): string[] {
  const e = error as EnvelopeError;
  return [
    e.message,
    String(e.stack),
    JSON.stringify(e),
    JSON.stringify(e.details ?? {}),
    inspect(e, { showHidden: true, depth: 10 }),
    format("%o", e),
  ];
}

describe("no key pasted into a URI is echoed (issue 11, 13)", () => {
  const hex = randomBytes(32).toString("hex");
  // A base64 key with '/' and '+' in it, as `openssl rand -base64 32` prints them.
  const b64 = `${randomBytes(32).toString("base64").slice(0, 10)}+/${randomBytes(32).toString("base64").slice(12)}`;
  const cases = (key: string) => [
    `local-aes:${key}`,
    `local-aes:///${key}`,
    `local-aes://${key}`,
    `local-aes://env/${key}`,
    `local-aes:/${key}`,
    `local-aes:///run/secrets/${key}`,
  ];

  it.each([
    ["hex", hex],
    ["base64", b64],
  ])("%s key: resolveKey and createEnvelope fail without echoing it", async (_kind, key) => {
    const pieces = [key.slice(0, 12), key.slice(20, 32), key.slice(-12)];
    for (const uri of cases(key)) {
      for (const attempt of [
        () => resolveKey(uri, "encrypt[0]", {}),
        () => createEnvelope({ encrypt: uri }, {}),
        () => envelopeFromEnv({ ENVELOPE_ENCRYPT_KEYS: uri }),
      ]) {
        const error = await caught(attempt);
        expect(EnvelopeError.isInstance(error), uri).toBe(true);
        for (const text of surfaces(error)) {
          for (const piece of pieces) expect(text.includes(piece), `${uri}: ${text}`).toBe(false);
        }
      }
    }
  });

  it("redactUri keeps what is useful and masks what could be a secret", () => {
    expect(redactUri(`local-aes:///${hex}`)).toBe("local-aes:…");
    expect(redactUri(`local-aes:${b64}`)).not.toContain(b64.slice(0, 12));
    expect(redactUri("local-rsa:///run/secrets/enc_key.pem")).toBe(
      "local-rsa:///run/secrets/enc_key.pem",
    );
    const arn =
      "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    expect(redactUri(arn)).toBe(arn);
    const mrk =
      "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    expect(redactUri(mrk)).toBe(mrk);
    const azure = "azure-kv://pii.vault.azure.net/keys/users/0123456789abcdef0123456789abcdef";
    expect(redactUri(azure)).toBe(azure);
    expect(redactUri("vault-transit://u:p@vault:8200/transit/keys/pii?token=s.abc")).toBe(
      "vault-transit://…@vault:8200/transit/keys/pii",
    );
  });

  it("a key file path (a mkdtemp folder, keygen's default name) stays readable; a base64 key inside a path does not", () => {
    // keygen's default names are 39 characters: two of them must print differently
    // (`envelope rotate` showed the new and the old key both as `local-rsa:….pem`).
    for (const path of [
      "/tmp/tmp.Xy7Qp2aB/keys/envelope-rsa-20261206-025300-123-a1b2c3.pem",
      "/tmp/envelope-local-rsa-OmbViJ/fresh/keys/envelope-rsa-20261206-025426-581-5c061e.pem",
      "/srv/App-Data_2026/Keys/envelope-rsa-20261206-025300-123-a1b2c3.pem",
    ]) {
      expect(redactUri(`local-rsa://${path}`)).toBe(`local-rsa://${path}`);
    }
    // A base64 key with no digit, split by a `/` (leaked while digits were required).
    const noDigit = "QhmHufKshsFJgKEkFCLhQWomUyN/JRLaDAOxHQkSjSo=";
    expect(redactUri(`local-aes:///my-keys/${noDigit}`)).not.toContain("QhmHufKshsFJ");
    expect(redactUri(`local-aes:///my-keys/${noDigit}`)).not.toContain("JRLaDAOxHQk");
    for (let i = 0; i < 2000; i++) {
      // Standard base64 (with / and +) after a hyphenated folder, and base64url (with - and _).
      const key = randomBytes(32).toString("base64");
      const url = randomBytes(32).toString("base64url");
      for (const uri of [
        `local-aes:///my-keys/${key}`,
        `local-aes:///srv/app-data/${key}/x.key`,
        `local-aes:${key}`,
        `local-aes:///keys_v2/${url}`,
        `local-aes://env-${url}`,
      ]) {
        const shown = redactUri(uri);
        for (const part of (uri.includes(key) ? key : url).split(/[/+=_-]/)) {
          if (part.length >= 12) expect(shown).not.toContain(part);
        }
      }
    }
  });
});

describe("strings from a stored value are escaped wherever shown (issue 11, 8)", () => {
  const evil = "k\n\u001b[31mFORGED LOG LINE\u001b[0m";

  function relabel(sealed: Uint8Array, keyRef: string): Buffer {
    const parts = decodeEnvelope(sealed);
    return encodeEnvelope({
      ...parts,
      entries: parts.entries.map((e: WrappedKey) => ({ ...e, keyRef })),
    });
  }

  function clean(texts: string[]) {
    for (const text of texts) {
      // inspect escapes control characters itself; the raw ones must not appear anywhere.
      expect(text.includes("\u001b")).toBe(false);
      expect(text.includes("\nFORGED")).toBe(false);
    }
  }

  it("ENVELOPE_NO_MATCHING_KEY message and details", async () => {
    const sealed = relabel(await new Envelope({ encrypt: countingProvider() }).encrypt("x"), evil);
    const error = await caught(() =>
      new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) }).decrypt(sealed),
    );
    expect((error as EnvelopeError).code).toBe("ENVELOPE_NO_MATCHING_KEY");
    expect((error as EnvelopeError).message).toContain("\\x0a\\x1b[31m");
    clean([(error as EnvelopeError).message, JSON.stringify((error as EnvelopeError).details)]);
  });

  it("ENVELOPE_COMMITMENT_MISMATCH details and audit events", async () => {
    const kms = countingProvider({ anyKeyRef: true });
    const env = new Envelope({ encrypt: kms, cache: false });
    const a = await env.encrypt("a");
    const b = await env.encrypt("b");
    // b's body with a's (valid, but other) data key, under an evil key reference.
    const swapped = encodeEnvelope({
      ...decodeEnvelope(b),
      entries: decodeEnvelope(a).entries.map((e) => ({ ...e, keyRef: evil })),
    });
    const events: AuditEvent[] = [];
    const audited = new Envelope({ encrypt: kms, cache: false, onAudit: (e) => events.push(e) });
    const error = await caught(() => audited.decrypt(swapped));
    expect((error as EnvelopeError).code).toBe("ENVELOPE_COMMITMENT_MISMATCH");
    expect((error as EnvelopeError).details?.keyRef).toContain("\\x0a");
    clean([
      (error as EnvelopeError).message,
      JSON.stringify((error as EnvelopeError).details),
      ...events.map((e) => `${e.provider} ${e.keyRef}`),
    ]);
    expect(events.some((e) => e.keyRef.includes("\\x1b[31m"))).toBe(true);
  });

  it("local-aes errors for an unknown entry", async () => {
    const aes = localAesProvider({ keys: randomBytes(32) });
    const error = await caught(() =>
      aes.unwrap(
        { providerId: "local-aes", keyRef: evil, wrapped: randomBytes(40) },
        { context: {} },
      ),
    );
    clean([(error as EnvelopeError).message, JSON.stringify((error as EnvelopeError).details)]);
  });
});

describe("lengths around every u16 boundary give typed errors (issue 11, 10)", () => {
  const lengths = [255, 256, 1024, 1025, 2048, 2049, 4096, 4097, 8192, 8193, 65535, 65536, 70000];
  const chars = ["a", "é", "😀"];

  it("contexts, key references, provider ids, text form, URIs, env and encodeEnvelope parts", async () => {
    const aes = localAesProvider({ keys: randomBytes(32) });
    const env = new Envelope({ encrypt: aes, storeContext: true });
    const sealed = await env.encrypt("x");
    const parts = decodeEnvelope(sealed);
    const untyped: string[] = [];
    const probe = async (name: string, fn: () => unknown) => {
      const error = await caught(fn);
      if (error !== undefined && !EnvelopeError.isInstance(error)) {
        untyped.push(`${name}: ${(error as Error).name}: ${(error as Error).message}`);
      }
    };
    for (const n of lengths) {
      for (const ch of chars) {
        const s = ch.repeat(n);
        const relabelled = (fields: Partial<WrappedKey>) => ({
          ...aes,
          wrap: async (d: Uint8Array) => ({ ...(await aes.wrap(d, { context: {} })), ...fields }),
        });
        await probe(`context key ${ch}×${n}`, () => env.encrypt("x", { context: { [s]: "v" } }));
        await probe(`table name ${ch}×${n}`, () => env.encrypt("x", { context: { table: s } }));
        await probe(`decrypt context ${ch}×${n}`, () =>
          env.decrypt(sealed, { context: { table: s } }),
        );
        await probe(`rewrap context ${ch}×${n}`, () =>
          env.rewrap(sealed, { context: { table: s } }),
        );
        await probe(`keyRef ${ch}×${n}`, () =>
          new Envelope({ encrypt: relabelled({ keyRef: s }) }).encrypt("x"),
        );
        await probe(`providerId ${ch}×${n}`, () =>
          new Envelope({ encrypt: relabelled({ providerId: s }) }).encrypt("x"),
        );
        await probe(`text ${ch}×${n}`, () => env.decrypt(`ev1:${s}`));
        await probe(`uri ${ch}×${n}`, () => resolveKey(`local-aes://env/${s}`, "k", {}));
        await probe(`scheme ${ch}×${n}`, () => resolveKey(`${s}://x`, "k", {}));
        await probe(`env ${ch}×${n}`, () => envelopeFromEnv({ ENVELOPE_ENCRYPT_KEYS: s }));
        await probe(`encode keyRef ${ch}×${n}`, () =>
          encodeEnvelope({ ...parts, entries: [{ ...parts.entries[0]!, keyRef: s }] }),
        );
        await probe(`encode providerId ${ch}×${n}`, () =>
          encodeEnvelope({ ...parts, entries: [{ ...parts.entries[0]!, providerId: s }] }),
        );
      }
      await probe(`encode wrapped ${n}`, () =>
        encodeEnvelope({ ...parts, entries: [{ ...parts.entries[0]!, wrapped: Buffer.alloc(n) }] }),
      );
      await probe(`encode storedContext ${n}`, () =>
        encodeEnvelope({ ...parts, storedContext: Buffer.alloc(n) }),
      );
      await probe(`encode messageId ${n}`, () =>
        encodeEnvelope({ ...parts, messageId: Buffer.alloc(n) }),
      );
      await probe(`encode commitment ${n}`, () =>
        encodeEnvelope({ ...parts, commitment: Buffer.alloc(n) }),
      );
    }
    await probe("encode 17 entries", () =>
      encodeEnvelope({ ...parts, entries: Array(17).fill(parts.entries[0]) }),
    );
    await probe("encode short body", () => encodeEnvelope({ ...parts, body: Buffer.alloc(3) }));
    expect(untyped).toEqual([]);
  });
});
