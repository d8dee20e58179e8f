/**
 * Live test against a real Azure Key Vault / Managed HSM. Skipped unless
 * ENVELOPE_TEST_AZURE_KEY_ID names a key and Azure credentials are in the environment
 * (AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, a federated token, or
 * AZURE_* plus `az login`, all read by DefaultAzureCredential). See the README.
 */
import { decodeEnvelope, Envelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { azureKeyVaultProvider } from "../src/index.js";

const keyId = process.env.ENVELOPE_TEST_AZURE_KEY_ID;
const hasCredentials = Object.keys(process.env).some((name) => name.startsWith("AZURE_"));

describe.skipIf(!keyId || !hasCredentials)("live Azure Key Vault", () => {
  const context = { table: "live", column: "test", id: "1" };

  it("round trip with local wrap (RSA) or remote wrap (oct-HSM)", async () => {
    const provider = azureKeyVaultProvider({ keyId: keyId! });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("live round trip", { context });
    const [entry] = decodeEnvelope(sealed).entries;
    expect(entry!.keyRef).toMatch(/\/keys\/[^/]+\/[0-9a-f]{32}$/);
    expect((await envelope.decrypt(sealed, { context })).toString()).toBe("live round trip");
  }, 60_000);

  it("round trip with every wrap sent to Key Vault", async () => {
    const provider = azureKeyVaultProvider({ keyId: keyId!, localWrap: false });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("remote wrap", { context });
    expect((await envelope.decrypt(sealed, { context })).toString()).toBe("remote wrap");
    // Already under the current version: rewrap is a no-op.
    expect((await envelope.rewrap(sealed, { to: provider, context })).equals(sealed)).toBe(true);
  }, 60_000);
});
