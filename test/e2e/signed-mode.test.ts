/**
 * The attack signed mode answers (issue 11 item 2), with the real local-rsa provider: a
 * service that holds only the RSA PUBLIC key (encrypt-only mode) can seal a value that
 * any reader opens, under any context it likes. Pinned readers refuse it.
 */
import { generateKeyPairSync } from "node:crypto";
import { DecryptionError, Envelope, EnvelopeError, generateSigningKeyPair } from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, expect, it } from "vitest";

const rsa = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
});
const context = { table: "users", column: "ssn", id: "42" };

describe("signed mode against a holder of the RSA public key", () => {
  const app = generateSigningKeyPair();
  const reader = localRsaProvider({ keys: [{ pem: rsa.privateKey }] });
  const publicOnly = localRsaProvider({ keys: [{ pem: rsa.publicKey }] });

  it("without signed mode, a value forged with only the public key is accepted", async () => {
    const forged = await new Envelope({ encrypt: publicOnly }).encrypt("999-99-9999", { context });
    const unpinned = new Envelope({ encrypt: reader });
    expect(await unpinned.decrypt(forged, { context, as: "text" })).toBe("999-99-9999");
  });

  it("with trustedSigners, the forged value is refused; the application's own values open", async () => {
    const pinned = new Envelope({ encrypt: reader, trustedSigners: [app.publicKey] });
    const forged = await new Envelope({ encrypt: publicOnly }).encrypt("999-99-9999", { context });
    const selfSigned = await new Envelope({
      encrypt: publicOnly,
      signing: { key: generateSigningKeyPair().privateKeyPem },
    }).encrypt("999-99-9999", { context });
    for (const [value, code] of [
      [forged, "ENVELOPE_UNSIGNED"],
      [selfSigned, "ENVELOPE_UNTRUSTED_SIGNER"],
    ] as const) {
      const error = await pinned.decrypt(value, { context }).catch((e: unknown) => e);
      expect(EnvelopeError.isInstance(error)).toBe(true);
      expect(error).toBeInstanceOf(DecryptionError);
      expect((error as EnvelopeError).code).toBe(code);
    }
    // The application's writer may itself be encrypt-only: it signs, it cannot read.
    const writer = new Envelope({ encrypt: publicOnly, signing: { key: app.privateKeyPem } });
    const genuine = await writer.encrypt("123-45-6789", { context, output: "text" });
    expect(await pinned.decrypt(genuine, { context, as: "text" })).toBe("123-45-6789");
  });
});
