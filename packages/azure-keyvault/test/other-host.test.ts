import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Envelope } from "@envelope/core";
import { failure } from "@envelope/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerFactory } from "../src/index.js";
import { type Harness, startHarness, staticCredential } from "./helpers.js";

let h: Harness;
let caFile: string;
beforeAll(async () => {
  h = await startHarness();
  caFile = join(mkdtempSync(join(tmpdir(), "envelope-kv-ca-")), "ca.pem");
  writeFileSync(caFile, h.kv.ca);
  await h.admin.createRsaKey("elsewhere");
});
afterAll(async () => {
  await h.close();
});

// The test server listens on 127.0.0.1, a host outside *.vault.azure.net, as a private
// endpoint name, a proxy or an emulator would (issue 14 item 8).
const keyId = () => `azure-kv://${new URL(h.kv.url).host}/keys/elsewhere`;

describe("azure-kv at a host outside *.vault.azure.net, without a custom agent", () => {
  it("round-trips with caFile and disableChallengeResourceVerification from a config object", async () => {
    const provider = await providerFactory.fromConfig({
      provider: "azure-kv",
      keyId: keyId(),
      credential: staticCredential(),
      caFile,
      disableChallengeResourceVerification: true,
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    expect((await envelope.decrypt(await envelope.encrypt("pii"))).toString()).toBe("pii");
  });

  it("takes both from the environment too (ENVELOPE_AZURE_KV_*)", async () => {
    const provider = await providerFactory.fromConfig(
      { provider: "azure-kv", keyId: keyId(), credential: staticCredential(), localWrap: false },
      {
        ENVELOPE_AZURE_KV_CA_FILE: caFile,
        ENVELOPE_AZURE_KV_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "true",
      },
    );
    const envelope = new Envelope({ encrypt: provider, cache: false });
    expect((await envelope.decrypt(await envelope.encrypt("pii"))).toString()).toBe("pii");
  });

  it("accepts them as URI options", async () => {
    const uri = `${keyId()}?caFile=${encodeURIComponent(caFile)}&disableChallengeResourceVerification=true`;
    const provider = await providerFactory.fromUri(uri, {});
    expect(provider.keyRef).toBe(`https://${new URL(h.kv.url).host}/keys/elsewhere`);
  });

  it("without disableChallengeResourceVerification the SDK's check still refuses the host (typed)", async () => {
    const provider = await providerFactory.fromConfig({
      provider: "azure-kv",
      keyId: keyId(),
      credential: staticCredential(),
      caFile,
      retry: { attempts: 1 },
    });
    const error = await failure(new Envelope({ encrypt: provider, cache: false }).encrypt("pii"));
    expect(error.details.provider).toBe("azure-kv");
  });

  it("an unreadable caFile is a config error naming the field", async () => {
    const error = await failure(
      providerFactory.fromConfig({
        provider: "azure-kv",
        keyId: keyId(),
        caFile: "/nonexistent/ca.pem",
      }),
    );
    expect(error.code).toBe("ENVELOPE_BAD_CONFIG");
    expect(error.details.field).toBe("caFile");
  });
});
