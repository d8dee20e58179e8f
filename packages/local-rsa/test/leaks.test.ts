import { inspect } from "node:util";
import { Envelope } from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { beforeAll, describe, expect, it } from "vitest";
import { type PemPair, pemBody, rsaPem } from "./helpers.js";

const PASSPHRASE = "CANARY-passphrase-7f3a";
let key: PemPair;
let other: PemPair;
let locked: PemPair;
beforeAll(() => {
  key = rsaPem();
  other = rsaPem();
  locked = rsaPem(2048, PASSPHRASE);
});

function expectNoSecrets(text: string): void {
  for (const line of [...pemBody(key.privatePem), ...pemBody(locked.privatePem)]) {
    expect(text).not.toContain(line);
  }
  expect(text).not.toContain("PRIVATE KEY");
  expect(text).not.toContain(PASSPHRASE);
}

describe("no key material in output", () => {
  it("inspect and JSON show key references and kinds only", () => {
    const provider = localRsaProvider({
      keys: [
        { pem: key.privatePem },
        { pem: locked.privatePem, passphrase: PASSPHRASE },
        { pem: other.publicPem },
      ],
    });
    const json = JSON.stringify(provider);
    const shown = inspect(provider, { depth: 10, showHidden: true });
    expect(JSON.parse(json)).toEqual({
      provider: "local-rsa",
      keyRef: provider.keyRef,
      keys: provider.keys.map((k) => ({ keyRef: k.keyRef, kind: k.kind })),
    });
    expect(shown).toMatch(
      /^LocalRsaProvider \{ keyRef: '[0-9a-f]{32}', keys: \[.*\(private\).*\(private\).*\(public\)\] \}$/,
    );
    for (const text of [
      json,
      shown,
      inspect(new Envelope({ encrypt: provider })),
      String(provider),
    ]) {
      expectNoSecrets(text);
    }
    // The provider's own enumerable fields hold no PEM text either.
    expectNoSecrets(inspect({ ...provider }, { depth: 10 }));
  });

  it("error messages never contain PEM content or the passphrase", () => {
    const attempts = [
      () =>
        localRsaProvider({ keys: { pem: locked.privatePem, passphrase: "not-the-passphrase" } }),
      () => localRsaProvider({ keys: { pem: locked.privatePem } }),
      () => localRsaProvider({ keys: { pem: key.privatePem.slice(0, 400) } }),
      () =>
        localRsaProvider({
          keys: { pem: key.privatePem.replace("PRIVATE KEY", "EC PRIVATE KEY") },
        }),
      () => localRsaProvider({ keys: { env: key.privatePem } }),
      () => localRsaProvider({ keys: { pem: key.privatePem, path: "/x" } }),
    ];
    for (const attempt of attempts) {
      let error: unknown;
      try {
        attempt();
      } catch (e) {
        error = e;
      }
      expect(error).toBeDefined();
      const e = error as Error & { code: string };
      expect(e.code).toMatch(/^ENVELOPE_BAD_(KEY|CONFIG)$/);
      expectNoSecrets(
        `${e.message} ${JSON.stringify(e)} ${inspect(e)}`.replace(/EC PRIVATE KEY/g, ""),
      );
    }
  });
});
