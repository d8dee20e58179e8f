import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { ClientSecretCredential } from "@azure/identity";
import { decodeEnvelope, Envelope, EnvelopeError, encodeEnvelope } from "@envelope/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testCertificate } from "../../../test/servers/tls.js";
import { findCanaries } from "../../../test/support/secret-surfaces.js";
import { type Harness, startHarness, staticCredential, TOKEN } from "./helpers.js";

// The vault's default challenge tenant (test/servers/azure-keyvault.ts).
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const BEARER = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.CANARYbearerTOKENpayload.c2lnbmF0dXJl";
const CLIENT_SECRET = "CANARY~clientSecret.Q8w~7f3aZx";
const CANARIES = [BEARER, CLIENT_SECRET, "CANARY"];

let h: Harness;
let counter = 0;
let aad: Server;
let aadUrl: string;
const aadRequests: string[] = [];

beforeAll(async () => {
  h = await startHarness({ tokens: [TOKEN, BEARER] });
  aad = await startEntraAuthority();
  aadUrl = `https://127.0.0.1:${(aad.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => aad.close(resolve));
  await h.close();
});
const NO_FAULTS = { latencyMs: 0, throttleEvery: 0, failEvery: 0, dropEvery: 0, hang: false };
beforeEach(() => {
  Object.assign(h.kv.faults, NO_FAULTS);
  h.kv.tokens.add(BEARER);
});

/**
 * A minimal Microsoft Entra authority (OpenID metadata + token endpoint) that answers
 * every client-credentials request as the service does for a wrong client secret:
 * 401 invalid_client, AADSTS7000215. Enough for @azure/identity's real
 * ClientSecretCredential to send the secret and fail.
 */
async function startEntraAuthority(): Promise<Server> {
  const { key, cert } = await testCertificate();
  const server = createServer({ key, cert }, (req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      aadRequests.push(`${req.method} ${req.url} ${body}`);
      const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}/${TENANT}`;
      if (req.url?.includes("/.well-known/openid-configuration")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            issuer: `${base}/v2.0`,
            token_endpoint: `${base}/oauth2/v2.0/token`,
            authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
            end_session_endpoint: `${base}/oauth2/v2.0/logout`,
            jwks_uri: `${base}/discovery/v2.0/keys`,
            response_types_supported: ["code"],
          }),
        );
        return;
      }
      res.writeHead(401, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: "invalid_client",
          error_description:
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
          error_codes: [7000215],
          timestamp: "2026-12-05 08:00:00Z",
          trace_id: "00000000-0000-0000-0000-000000000001",
          correlation_id: "00000000-0000-0000-0000-000000000002",
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

async function rejection(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  if (!EnvelopeError.isInstance(error)) throw error;
  return error;
}

/** A fresh key, a value sealed under it, and a no-cache reader with the canary bearer token. */
async function sealed(extra: Parameters<Harness["provider"]>[1] = {}) {
  const name = `leak-${++counter}`;
  const key = await h.admin.createRsaKey(name);
  const provider = h.provider(`${h.kv.url}/keys/${name}`, {
    credential: staticCredential(BEARER),
    ...extra,
  });
  const envelope = new Envelope({ encrypt: provider, cache: false });
  const value = await envelope.encrypt("123-45-6789");
  h.kv.resetCalls();
  return { name, key, provider, envelope, value };
}

describe("azure-keyvault: no credential on any surface of an error (canary token and client secret, real SDK)", () => {
  const cases: [string, string, () => Promise<EnvelopeError>][] = [
    [
      "429 on every request (unwrapKey)",
      "ENVELOPE_KMS_THROTTLED",
      async () => {
        const { envelope, value } = await sealed();
        Object.assign(h.kv.faults, { throttleEvery: 1 });
        return rejection(envelope.decrypt(value));
      },
    ],
    [
      "5xx on every request (get key)",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const name = `leak-${++counter}`;
        await h.admin.createRsaKey(name);
        const provider = h.provider(`${h.kv.url}/keys/${name}`, {
          credential: staticCredential(BEARER),
        });
        Object.assign(h.kv.faults, { failEvery: 1 });
        return rejection(new Envelope({ encrypt: provider }).encrypt("x"));
      },
    ],
    [
      "5xx on wrapKey (localWrap off: the request body holds the data key)",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const { envelope } = await sealed({ localWrap: false });
        Object.assign(h.kv.faults, { failEvery: 1 });
        return rejection(envelope.encrypt("x"));
      },
    ],
    [
      "dropped connections",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const { envelope, value } = await sealed();
        Object.assign(h.kv.faults, { dropEvery: 1 });
        return rejection(envelope.decrypt(value));
      },
    ],
    [
      "no answer (timeout)",
      "ENVELOPE_KMS_TIMEOUT",
      async () => {
        const { envelope, value } = await sealed({
          retry: { attempts: 1, timeoutMs: 150 },
        });
        Object.assign(h.kv.faults, { hang: true });
        return rejection(envelope.decrypt(value));
      },
    ],
    [
      "the bearer token is refused (401)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const { envelope, value } = await sealed();
        h.kv.tokens.delete(BEARER);
        return rejection(envelope.decrypt(value));
      },
    ],
    [
      "a disabled key version (403 KeyDisabled)",
      "ENVELOPE_KEY_DISABLED",
      async () => {
        const { name, key, envelope, value } = await sealed();
        await h.admin.updateKeyProperties(name, key.properties.version!, { enabled: false });
        return rejection(envelope.decrypt(value));
      },
    ],
    [
      "a corrupted wrapped key (400 on unwrapKey)",
      "ENVELOPE_UNWRAP_FAILED",
      async () => {
        const { envelope, value } = await sealed();
        const parts = decodeEnvelope(value);
        const entry = parts.entries[0]!;
        const wrapped = Buffer.from(entry.wrapped);
        wrapped[wrapped.length - 1]! ^= 1;
        const damaged = encodeEnvelope({ ...parts, entries: [{ ...entry, wrapped }] });
        return rejection(envelope.decrypt(damaged));
      },
    ],
    [
      "ClientSecretCredential with a wrong client secret (Entra answers 401 invalid_client)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const name = `leak-${++counter}`;
        await h.admin.createRsaKey(name);
        const credential = new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET, {
          authorityHost: aadUrl,
          disableInstanceDiscovery: true,
          agent: h.clientOptions.agent,
        } as ConstructorParameters<typeof ClientSecretCredential>[3]);
        const provider = h.provider(`${h.kv.url}/keys/${name}`, { credential });
        return rejection(new Envelope({ encrypt: provider }).encrypt("x"));
      },
    ],
    [
      "a credential whose error message quotes a token (found by an independent Key Vault server: it was copied word for word)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const name = `leak-${++counter}`;
        await h.admin.createRsaKey(name);
        const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6IkNBTkFSWSJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCIsIkNBTkFSWSI6InRva2VuIn0CANARYpayloadXyZ123.${"c2lnbmF0dXJlQ0FOQVJZ".repeat(3)}`;
        const credential = {
          getToken: async () => {
            throw Object.assign(new Error(`AADSTS70011: the token ${token} was rejected`), {
              name: "AuthenticationError",
            });
          },
        };
        const provider = h.provider(`${h.kv.url}/keys/${name}`, { credential });
        return rejection(new Envelope({ encrypt: provider }).encrypt("x"));
      },
    ],
  ];

  it.each(cases)("%s: %s, and no canary on any surface", async (_name, code, provoke) => {
    const error = await provoke();
    const codes: string[] = [];
    for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
      if (EnvelopeError.isInstance(e)) codes.push(e.code);
    }
    expect(codes).toContain(code);
    expect(findCanaries(error, CANARIES)).toEqual([]);
  });

  it("the client secret really reached the authority (the leak test above is not vacuous)", () => {
    expect(aadRequests.some((r) => r.includes(encodeURIComponent(CLIENT_SECRET)))).toBe(true);
  });
});
