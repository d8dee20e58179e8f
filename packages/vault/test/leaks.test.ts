import { decodeEnvelope, Envelope, EnvelopeError, encodeEnvelope } from "@envelope/core";
import { providerFactory, type VaultTransitOptions } from "@envelope/vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findCanaries } from "../../../test/support/secret-surfaces.js";
import { type Harness, harness } from "./helpers.js";

const ROOT_TOKEN = "hvs.CANARYrootTOKEN0aB1cD2eF3gH4iJ5kL6";

let h: Harness;
beforeEach(async () => {
  h = await harness({ rootToken: ROOT_TOKEN });
  await h.admin.write("transit/keys/pii", {});
});
afterEach(() => h.close());

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

/** Codes of the EnvelopeErrors down the cause chain. */
function codes(error: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (EnvelopeError.isInstance(e)) out.push(e.code);
  }
  return out;
}

const reader = (overrides: Partial<VaultTransitOptions> = {}) =>
  new Envelope({ encrypt: h.provider({ retry: { attempts: 2 }, ...overrides }), cache: false });

/** Every token and AppRole secret the server knows of: all are canaries. */
const secrets = (extra: string[] = []) => [
  ROOT_TOKEN,
  "CANARY",
  ...h.vault.issuedTokens(),
  ...extra,
];

describe("vault: no token or secret_id on any surface of an error (real node-vault client)", () => {
  const cases: [string, string, () => Promise<{ error: unknown; canaries: string[] }>][] = [
    [
      "429 on every request",
      "ENVELOPE_KMS_THROTTLED",
      async () => {
        const sealed = await reader().encrypt("123-45-6789");
        h.vault.faults.throttleEvery = 1;
        return { error: await rejection(reader().decrypt(sealed)), canaries: secrets() };
      },
    ],
    [
      "500 on every request",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        h.vault.faults.failEvery = 1;
        return { error: await rejection(reader().encrypt("x")), canaries: secrets() };
      },
    ],
    [
      "sealed",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        h.vault.sealed = true;
        return { error: await rejection(reader().encrypt("x")), canaries: secrets() };
      },
    ],
    [
      "dropped connections",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const sealed = await reader().encrypt("x");
        h.vault.faults.dropEvery = 1;
        return { error: await rejection(reader().decrypt(sealed)), canaries: secrets() };
      },
    ],
    [
      "no answer (timeout)",
      "ENVELOPE_KMS_TIMEOUT",
      async () => {
        h.vault.faults.hang = true;
        return {
          error: await rejection(reader({ timeoutMs: 150, retry: { attempts: 1 } }).encrypt("x")),
          canaries: secrets(),
        };
      },
    ],
    [
      "a revoked token (403)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const token = h.vault.createToken({ policies: ["root"] });
        const envelope = reader({ auth: { token, renew: false } });
        const sealed = await envelope.encrypt("x");
        h.vault.revokeToken(token);
        return { error: await rejection(envelope.decrypt(sealed)), canaries: secrets([token]) };
      },
    ],
    [
      "a corrupted wrapped key (400 on decrypt)",
      "ENVELOPE_UNWRAP_FAILED",
      async () => {
        const sealed = await reader().encrypt("x", { output: "binary" });
        const parts = decodeEnvelope(sealed);
        const entry = parts.entries[0]!;
        const text = Buffer.from(entry.wrapped).toString("latin1");
        const wrapped = Buffer.from(`${text.slice(0, -4)}AAAA`, "latin1");
        const damaged = encodeEnvelope({ ...parts, entries: [{ ...entry, wrapped }] });
        return { error: await rejection(reader().decrypt(damaged)), canaries: secrets() };
      },
    ],
    [
      "AppRole with a wrong secret_id (400 on login; the login body holds it)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const { roleId } = h.vault.addAppRole({ policies: ["root"] });
        const secretId = "CANARY-secret-id-0f9e8d7c-6b5a";
        return {
          error: await rejection(reader({ auth: { approle: { roleId, secretId } } }).encrypt("x")),
          canaries: secrets([secretId, roleId]),
        };
      },
    ],
    [
      "AppRole login throttled (the login request holds the secret_id)",
      "ENVELOPE_KMS_THROTTLED",
      async () => {
        const { roleId, secretId } = h.vault.addAppRole({ policies: ["root"] });
        h.vault.faults.throttleEvery = 1;
        return {
          error: await rejection(reader({ auth: { approle: { roleId, secretId } } }).encrypt("x")),
          canaries: secrets([secretId, roleId]),
        };
      },
    ],
    [
      "AppRole token, then 500 on encrypt",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const { roleId, secretId } = h.vault.addAppRole({ policies: ["root"] });
        const envelope = reader({ auth: { approle: { roleId, secretId } } });
        await envelope.encrypt("x"); // logged in
        h.vault.faults.failEvery = 1;
        return {
          error: await rejection(envelope.encrypt("y")),
          canaries: secrets([secretId, roleId]),
        };
      },
    ],
    [
      "a URI with a token in its userinfo that does not parse",
      "ENVELOPE_BAD_CONFIG",
      async () => ({
        error: await rejection(
          providerFactory.fromUri(
            `vault-transit://root:${ROOT_TOKEN}@vault host:8200/transit/keys/pii`,
            {
              VAULT_TOKEN: ROOT_TOKEN,
            },
          ),
        ),
        canaries: secrets(),
      }),
    ],
  ];

  it.each(cases)("%s: %s, and no canary on any surface", async (_name, code, provoke) => {
    const { error, canaries } = await provoke();
    expect(codes(error)).toContain(code);
    expect(findCanaries(error, canaries)).toEqual([]);
  });
});
