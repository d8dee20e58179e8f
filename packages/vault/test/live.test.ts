// Against a real Vault. Runs only when VAULT_ADDR, VAULT_TOKEN and ENVELOPE_TEST_VAULT_KEY
// are set (the key as `<name>` on the `transit` mount, or `<mount>/keys/<name>`); honours
// VAULT_NAMESPACE and VAULT_CACERT / VAULT_CLIENT_CERT / VAULT_CLIENT_KEY. It never rotates
// or reconfigures the key. See the README, "Live tests".
import { decodeEnvelope, Envelope } from "@envelope/core";
import { providerFactory, type VaultTransitProvider } from "@envelope/vault";
import { describe, expect, it } from "vitest";

const { VAULT_ADDR, VAULT_TOKEN, ENVELOPE_TEST_VAULT_KEY } = process.env;
const live = Boolean(VAULT_ADDR && VAULT_TOKEN && ENVELOPE_TEST_VAULT_KEY);

function keyOptions(spec: string): { mount: string; keyName: string } {
  const cut = spec.lastIndexOf("/keys/");
  return cut > 0
    ? { mount: spec.slice(0, cut), keyName: spec.slice(cut + 6) }
    : { mount: "transit", keyName: spec };
}

describe.skipIf(!live)("live Vault transit", () => {
  const context = { table: "envelope_live", column: "secret", id: String(Date.now()) };

  it("round trip, cached decrypt and native rewrap against a real Vault", async () => {
    const provider = (await providerFactory.fromConfig({
      provider: "vault-transit",
      address: VAULT_ADDR,
      ...keyOptions(ENVELOPE_TEST_VAULT_KEY!),
    })) as VaultTransitProvider;
    const info = await provider.refresh();
    expect(provider.keyRef).toMatch(new RegExp(`@v${info.latestVersion}$`));

    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("live secret", { context });
    expect((await envelope.decrypt(sealed, { context, as: "text" })).toString()).toBe(
      "live secret",
    );
    expect((await envelope.decrypt(sealed, { context, as: "text" })).toString()).toBe(
      "live secret",
    );
    expect(envelope.cacheStats().hits).toBeGreaterThanOrEqual(1);

    // Rewrap through Vault's rewrap endpoint (the provider's native path): body unchanged.
    const entry = decodeEnvelope(sealed).entries[0]!;
    const rewrapped = await provider.rewrap!(entry, { context });
    expect(rewrapped.keyRef).toBe(provider.keyRef);
    expect(Buffer.from(rewrapped.wrapped).toString("latin1")).toMatch(/^vault:v\d+:/);
    expect(Buffer.from(await provider.unwrap(rewrapped, { context }))).toHaveLength(32);
  });
});
