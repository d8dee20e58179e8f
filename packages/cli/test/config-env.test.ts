import { generateSigningKeyPair } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { tempDir } from "./support.js";

describe("CLI config from ENVELOPE_* variables", () => {
  it("takes padding, signing, trusted signers and the entry cap from env, as the library does", async () => {
    const signer = generateSigningKeyPair();
    const env = {
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/K",
      K: Buffer.alloc(32, 7).toString("base64"),
      ENVELOPE_PAD: "32",
      ENVELOPE_SIGNING_KEY: signer.privateKeyPem,
      ENVELOPE_TRUSTED_SIGNERS: signer.publicKey,
      ENVELOPE_MAX_ENTRIES_TRIED: "5",
    };
    const loaded = await loadConfig({}, env, tempDir());
    expect(loaded.library).toMatchObject({
      pad: expect.anything(),
      signing: { key: signer.privateKeyPem.trim() },
      trustedSigners: [signer.publicKey],
      maxEntriesTried: 5,
    });
  });
});
