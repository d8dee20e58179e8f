// The provider conformance suite of @envelope/core/testing (the same one every provider
// package runs under vitest) on the local providers, imported from their built packages.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import { runProviderConformance } from "@envelope/core/testing";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { localRsaProvider } from "@envelope/local-rsa";

const context = { table: "users", column: "phone", id: "9" };

/** Two RSA keys made once: key generation is the slow part, and the suite needs two keys. */
function rsaPems() {
  const pem = () =>
    generateKeyPairSync("rsa", { modulusLength: 2048 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
  return [pem(), pem()];
}

/** local-aes, local-rsa (on the calling thread and on its worker pool), hierarchical. */
export function providerConformance({ describe, it, after }) {
  const api = { describe, it };
  const aes = () => localAesProvider({ keys: randomBytes(32) });
  runProviderConformance(api, {
    name: "local-aes (built into @envelope/core)",
    provider: aes,
    otherKey: aes,
  });

  const [pemA, pemB] = rsaPems();
  // threads: false, not the default: ENVELOPE_LOCAL_RSA_THREADS in CI's env must not decide.
  const inline = (pem) => () => localRsaProvider({ keys: { pem }, threads: false });
  runProviderConformance(api, {
    name: "local-rsa (RSA on the calling thread)",
    provider: inline(pemA),
    otherKey: inline(pemB),
  });

  describe("local-rsa on its worker_threads pool", () => {
    const pooled = [];
    const onPool = (pem) => () => {
      const provider = localRsaProvider({ keys: { pem }, threads: 2 });
      pooled.push(provider);
      return provider;
    };
    // Idle workers are unref'd, but a runner may wait for them anyway: stop every pool.
    after(() => Promise.all(pooled.map((p) => p.close())));

    runProviderConformance(api, {
      name: "local-rsa (threads: 2)",
      provider: onPool(pemA),
      otherKey: onPool(pemB),
    });

    it("the conformance suite's unwraps ran on worker threads", async () => {
      const unwraps = pooled.flatMap((p) => p.threadStats()).reduce((n, s) => n + s.unwraps, 0);
      // Round trip (2) and wrong context (1) unwrap with the right key; wrong key never does.
      assert.ok(pooled.length > 0 && unwraps >= 3, `only ${unwraps} unwraps on worker threads`);
    });

    it("8 concurrent unwraps spread over the pool, each on a worker thread", async () => {
      const provider = onPool(pemA)();
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const values = Array.from({ length: 8 }, (_, i) => `value-${i}`);
      const sealed = await Promise.all(values.map((v) => envelope.encrypt(v, { context })));
      const opened = await Promise.all(
        sealed.map((s) => envelope.decrypt(s, { context, as: "text" })),
      );
      assert.deepEqual(opened, values);
      const stats = provider.threadStats();
      assert.equal(
        stats.reduce((n, s) => n + s.unwraps, 0),
        values.length,
        "every unwrap ran on a worker thread",
      );
      assert.equal(stats.length, 2, "both threads started");
    });

    it("after close(), unwraps run on the calling thread", async () => {
      const provider = onPool(pemA)();
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const sealed = await envelope.encrypt("after close", { context });
      assert.equal(await envelope.decrypt(sealed, { context, as: "text" }), "after close");
      await provider.close();
      const before = provider.threadStats().reduce((n, s) => n + s.unwraps, 0);
      assert.equal(await envelope.decrypt(sealed, { context, as: "text" }), "after close");
      assert.equal(
        provider.threadStats().reduce((n, s) => n + s.unwraps, 0),
        before,
      );
    });
  });

  // Each hierarchical provider has its own master and key store; KMS faults belong to the
  // master's own suite (unwrap is local once the intermediate key is cached).
  const overAes = () => hierarchicalProvider({ master: aes(), store: memoryKeyStore() });
  runProviderConformance(api, {
    name: "hierarchical over local-aes",
    provider: overAes,
    otherKey: overAes,
  });
  const overRsa = (pem) => () =>
    hierarchicalProvider({ master: inline(pem)(), store: memoryKeyStore() });
  runProviderConformance(api, {
    name: "hierarchical over local-rsa",
    provider: overRsa(pemA),
    otherKey: overRsa(pemB),
  });
}
