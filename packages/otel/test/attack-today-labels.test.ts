/**
 * Review of today's otel change (labels.ts `trust()`): the configured keys' references keep
 * their own metric labels whatever an attacker plants in stored values. `it.fails` marks a
 * finding (see its comment).
 */
import { randomBytes } from "node:crypto";
import {
  createEnvelope,
  Envelope,
  type KeyProvider,
  localAesProvider,
  ProviderError,
  toText,
  type WrappedKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { otelHarness } from "./harness.js";

const ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/**
 * A KMS provider configured by alias, as @envelope/aws-kms is with `alias/app`: its `keyRef`
 * is the alias, the entries it writes name the key ARN (aws-kms kms-calls.ts toEntry), and
 * it claims every entry of its id (discovery), failing the ones it did not write.
 */
function aliasProvider(keyRef = "alias/app") {
  const inner = localAesProvider({ keys: randomBytes(32) });
  const provider: KeyProvider = {
    id: inner.id,
    keyRef,
    handles: (e) => e.providerId === inner.id,
    async wrap(k, r) {
      return { ...(await inner.wrap(k, r)), keyRef: ARN };
    },
    async unwrap(entry: WrappedKey, request) {
      if (entry.keyRef !== ARN) throw new ProviderError("ENVELOPE_KEY_NOT_FOUND", "no such key");
      return inner.unwrap({ ...entry, keyRef: inner.keyRef }, request);
    },
  };
  return provider;
}

/** A stored value whose only entry names `keyRef` (written by whoever can write rows). */
function planted(keyRef: string): string {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const id = Buffer.from("local-aes");
  const ref = Buffer.from(keyRef);
  const wrapped = randomBytes(40);
  return toText(
    Buffer.concat([
      Buffer.from([1, 1, 0]),
      randomBytes(32),
      randomBytes(32),
      Buffer.from([1, id.length]),
      id,
      u16(ref.length),
      ref,
      u16(wrapped.length),
      wrapped,
      Buffer.from([0, 0, 0, 0]),
      randomBytes(16),
    ]),
  );
}

describe("today: trusted key-reference labels", () => {
  // Was FINDING (fixed: provider.ts trusts the keyRef of the entries its own wraps return).
  // It was (low; otel/src/provider.ts L91 + telemetry.ts instrument): only `provider.keyRef`
  // is trusted. A KMS key configured by alias (aws-kms: keyRef "alias/app") writes entries
  // naming the key ARN, and every unwrap is labelled with the entry's reference, the ARN,
  // which is never trusted. An attacker's planted values read first (after a restart) take
  // the maxKeyRefs slots and the service's own decrypts are labelled `_other` — the finding
  // the change closed for `encrypt`, still open for decrypt under an alias. Fix: trust the
  // keyRef of the entries the provider's own wrap / generateDataKey return.
  it("the service's own unwraps (entries naming the ARN of its aliased key) keep their label after an attacker fills maxKeyRefs", async () => {
    const otel = otelHarness({ maxKeyRefs: 10 });
    const provider = aliasProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider, cache: false }));
    const own = await envelope.encrypt("x");
    await envelope.decryptMany(
      Array.from({ length: 20 }, (_, i) => ({ sealed: planted(`attacker-${i}`) })),
    );
    expect(String(await envelope.decrypt(own))).toBe("x");
    const labels = new Set<string>();
    for (const p of await otel.points())
      if (p.attributes["envelope.kms.operation"] === "unwrap")
        labels.add(String(p.attributes["envelope.key_ref"]));
    expect(labels.has(ARN)).toBe(true);
  });

  it("held: the alias itself (encrypt) keeps its label after the attacker fills maxKeyRefs", async () => {
    const otel = otelHarness({ maxKeyRefs: 10 });
    const provider = aliasProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider, cache: false }));
    await envelope.decryptMany(
      Array.from({ length: 20 }, (_, i) => ({ sealed: planted(`attacker-${i}`) })),
    );
    await envelope.encrypt("x");
    expect(
      await otel.value("envelope.operations", {
        "envelope.operation": "encrypt",
        "envelope.key_ref": "alias/app",
      }),
    ).toBe(1);
  });

  it("a decrypt-only key given to instrumentConfig keeps its label after the attacker fills maxKeyRefs", async () => {
    const otel = otelHarness({ maxKeyRefs: 10 });
    // A KMS key by its ARN: its entries name its keyRef, and it claims every entry of its id.
    const old = aliasProvider(ARN);
    const own = await new Envelope({ encrypt: old }).encrypt("x");
    const current = localAesProvider({ keys: randomBytes(32) });
    const envelope = await createEnvelope(
      await otel.telemetry.instrumentConfig({ encrypt: current, decrypt: [old], cache: false }),
    );
    await envelope.decryptMany(
      Array.from({ length: 20 }, (_, i) => ({ sealed: planted(`attacker-${i}`) })),
    );
    expect(String(await envelope.decrypt(own))).toBe("x");
    expect(
      await otel.value("envelope.operations", {
        "envelope.operation": "decrypt",
        "envelope.key_ref": old.keyRef,
      }),
    ).toBe(1);
  });
});
