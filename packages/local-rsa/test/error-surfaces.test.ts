import { createPrivateKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeEnvelope, Envelope, EnvelopeError, encodeEnvelope } from "@envelope/core";
import { localRsaProvider, providerFactory } from "@envelope/local-rsa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findCanaries } from "../../../test/support/secret-surfaces.js";
import { type PemPair, pemBody, rsaPem, tempDir } from "./helpers.js";

const PASSPHRASE = "CANARY-pkcs8-passphrase-4d2c";
let locked: PemPair;
let canaries: string[];
let dir: string;
let cleanup: () => void;

beforeAll(() => {
  locked = rsaPem(2048, PASSPHRASE);
  const clear = createPrivateKey({ key: locked.privatePem, passphrase: PASSPHRASE })
    .export({ type: "pkcs8", format: "pem" })
    .toString();
  // The passphrase, the encrypted PEM and the same key unencrypted: none may show.
  canaries = [PASSPHRASE, "CANARY", ...pemBody(locked.privatePem), ...pemBody(clear)];
  ({ dir, cleanup } = tempDir());
  writeFileSync(join(dir, "locked.pem"), locked.privatePem, { mode: 0o600 });
  writeFileSync(join(dir, "wrong-pass"), "CANARY-not-the-passphrase\n", { mode: 0o600 });
  writeFileSync(
    join(dir, "truncated.pem"),
    `${locked.privatePem.slice(0, locked.privatePem.length / 2)}\n-----END ENCRYPTED PRIVATE KEY-----\n`,
    { mode: 0o600 },
  );
});
afterAll(() => cleanup());

async function rejection(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const codes = (error: unknown): string[] => {
  const out: string[] = [];
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (EnvelopeError.isInstance(e)) out.push(e.code);
  }
  return out;
};

describe("local-rsa: no passphrase or key material on any surface of an error", () => {
  const cases: [string, string, () => unknown][] = [
    [
      "a wrong passphrase (pem + passphrase)",
      "ENVELOPE_BAD_KEY",
      () => localRsaProvider({ keys: { pem: locked.privatePem, passphrase: "CANARY-wrong-one" } }),
    ],
    [
      "a wrong passphrase (file + passphraseFile)",
      "ENVELOPE_BAD_KEY",
      () =>
        localRsaProvider({
          keys: { path: join(dir, "locked.pem"), passphraseFile: join(dir, "wrong-pass") },
        }),
    ],
    [
      "a wrong passphrase (env + passphraseEnv)",
      "ENVELOPE_BAD_KEY",
      () =>
        localRsaProvider({
          keys: { env: "RSA_KEY", passphraseEnv: "RSA_PASS" },
          env: { RSA_KEY: locked.privatePem, RSA_PASS: "CANARY-wrong-env" },
        }),
    ],
    [
      "no passphrase for an encrypted key",
      "ENVELOPE_BAD_KEY",
      () => localRsaProvider({ keys: { pem: locked.privatePem } }),
    ],
    [
      "a truncated encrypted key file",
      "ENVELOPE_BAD_KEY",
      () =>
        localRsaProvider({
          keys: { path: join(dir, "truncated.pem"), passphrase: PASSPHRASE },
        }),
    ],
    [
      "a URI with a wrong passphrase-file",
      "ENVELOPE_BAD_KEY",
      () =>
        providerFactory.fromUri(
          `local-rsa://${join(dir, "locked.pem")}?passphrase-file=${join(dir, "wrong-pass")}`,
        ),
    ],
    [
      "a URI with the passphrase in it",
      "ENVELOPE_BAD_CONFIG",
      () =>
        providerFactory.fromUri(`local-rsa://${join(dir, "locked.pem")}?passphrase=${PASSPHRASE}`),
    ],
    [
      "unwrap of a corrupted entry with the decrypted key (OpenSSL error as cause)",
      "ENVELOPE_UNWRAP_FAILED",
      async () => {
        const provider = localRsaProvider({
          keys: { pem: locked.privatePem, passphrase: PASSPHRASE },
        });
        const envelope = new Envelope({ encrypt: provider, cache: false });
        const sealed = await envelope.encrypt("123-45-6789", { output: "binary" });
        const parts = decodeEnvelope(sealed);
        const entry = parts.entries[0]!;
        const wrapped = Buffer.from(entry.wrapped);
        wrapped[10]! ^= 0xff;
        await envelope.decrypt(encodeEnvelope({ ...parts, entries: [{ ...entry, wrapped }] }));
      },
    ],
  ];

  it.each(cases)("%s: %s, and no canary on any surface", async (_name, code, run) => {
    const error = await rejection(run);
    expect(codes(error)).toContain(code);
    expect(findCanaries(error, canaries)).toEqual([]);
  });
});
