/**
 * Cross-provider rewrap chain: local-rsa → aws-kms → azure-kv → vault-transit → local-rsa.
 * Only the wrapped-key entry changes at each hop; the body, message id and commitment stay
 * byte-identical, and after each hop the new provider alone opens the value. Then native
 * rewrap inside AWS KMS (ReEncrypt) and Vault (rewrap) after a rotation of each.
 */
import {
  decodeEnvelope,
  Envelope,
  type EnvelopeParts,
  inspectEnvelope,
  type KeyProvider,
} from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, CONTEXT, failure, startWorld, type World } from "./fixtures.js";

const PLAINTEXT = "078-05-1120";

let w: World;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

/** What must never change under a rewrap. */
function invariant(parts: EnvelopeParts) {
  return {
    body: bytes(parts.body).toString("hex"),
    messageId: bytes(parts.messageId).toString("hex"),
    commitment: bytes(parts.commitment).toString("hex"),
    flags: parts.flags,
  };
}

/** Key Vault calls without the SDK's bearer-challenge handshake (one per new client). */
function keyCalls(calls: Record<string, number>): Record<string, number> {
  const { challenge: _handshake, ...rest } = calls;
  return rest;
}

/** Only `provider` configured: no other key can help it open the value. */
async function openWithOnly(provider: KeyProvider, sealed: Uint8Array): Promise<string> {
  return new Envelope({ encrypt: provider, cache: false }).decrypt(sealed, {
    context: CONTEXT,
    as: "text",
  });
}

describe("rewrap chain local-rsa → aws-kms → azure-kv → vault-transit → local-rsa", () => {
  it("keeps body, message id and commitment byte-identical and moves the entry at every hop", async () => {
    const rsaStart = w.localRsa(0);
    const original = await new Envelope({ encrypt: rsaStart }).encrypt(PLAINTEXT, {
      context: CONTEXT,
    });
    const fixed = invariant(decodeEnvelope(original));
    expect(decodeEnvelope(original).entries).toMatchObject([
      { providerId: "local-rsa", keyRef: rsaStart.keyRef },
    ]);

    const vault = await w.vaultTransit();
    const rsaEnd = w.localRsa(1); // a different RSA key: the chain ends on a new local key
    // Each hop: [target, the keyRef its entry must carry, calls expected on the servers].
    const hops: [KeyProvider, (ref: string) => boolean, () => void][] = [
      [
        w.awsKms(),
        (ref) => ref === w.awsKey.arn,
        // local-rsa has no KMS: the data key is unwrapped here and sent to KMS Encrypt.
        () => expect(w.aws.calls).toEqual({ Encrypt: 1 }),
      ],
      [
        w.azureKv(),
        (ref) => ref.startsWith(`${w.azureKeyId}/`) && ref.length > w.azureKeyId.length + 1,
        () => {
          expect(w.aws.calls).toEqual({ Decrypt: 1 });
          // Wrapped locally with the key's public key: one get key, no wrapKey call.
          expect(keyCalls(w.azure.calls)).toEqual({ getKey: 1 });
        },
      ],
      [
        vault,
        (ref) => ref === "transit/keys/pii@v1",
        () => {
          expect(keyCalls(w.azure.calls)).toEqual({ unwrapKey: 1 });
          expect(w.vault.calls).toEqual({ encrypt: 1 });
        },
      ],
      [
        rsaEnd,
        (ref) => ref === rsaEnd.keyRef && ref !== rsaStart.keyRef,
        () => {
          expect(w.vault.calls).toEqual({ decrypt: 1 });
          expect({ ...w.aws.calls, ...w.azure.calls }).toEqual({});
        },
      ],
    ];

    let current: Uint8Array = original;
    let holder: KeyProvider = rsaStart;
    for (const [target, namesKey, checkCalls] of hops) {
      w.resetCalls();
      // An Envelope that can open the current entry, rewrapping onto the next provider.
      const next = await new Envelope({ encrypt: holder, cache: false }).rewrap(current, {
        to: target,
        context: CONTEXT,
      });
      checkCalls();
      const parts = decodeEnvelope(next);
      expect(invariant(parts)).toEqual(fixed);
      expect(parts.entries).toHaveLength(1);
      expect(parts.entries[0]!.providerId).toBe(target.id);
      expect(namesKey(parts.entries[0]!.keyRef)).toBe(true);
      expect(inspectEnvelope(next).entries[0]!.provider).toBe(target.id);

      // The new provider alone opens it; the previous one alone no longer can.
      expect(await openWithOnly(target, next)).toBe(PLAINTEXT);
      const stale = await failure(openWithOnly(holder, next));
      expect(stale.code).toBe("ENVELOPE_NO_MATCHING_KEY");

      current = next;
      holder = target;
    }
    // Back on a local key: decrypting needs no server at all.
    w.resetCalls();
    expect(await openWithOnly(w.localRsa(1), current)).toBe(PLAINTEXT);
    expect({ ...w.aws.calls, ...w.azure.calls, ...w.vault.calls }).toEqual({});
  });
});

describe("native rewrap after a rotation", () => {
  it("AWS KMS: after key rotation, a forced rewrap is one ReEncrypt and one Decrypt (the check)", async () => {
    const aws = w.awsKms();
    const envelope = new Envelope({ encrypt: aws, cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const before = decodeEnvelope(sealed);
    expect(w.aws.inspectCiphertext(before.entries[0]!.wrapped).version).toBe(0);

    expect(w.aws.rotateKey(w.awsKey.arn)).toBe(1);
    const calls = { ...w.aws.calls };
    // The ARN is unchanged by KMS rotation, so `force` asks for the newest key material.
    const moved = await envelope.rewrap(sealed, { to: aws, context: CONTEXT, force: true });
    expect(w.aws.calls.ReEncrypt ?? 0).toBe((calls.ReEncrypt ?? 0) + 1);
    // Issue 11: the new entry is unwrapped once (commitment check) before the old goes.
    expect(w.aws.calls.Decrypt ?? 0).toBe((calls.Decrypt ?? 0) + 1);
    expect(w.aws.calls.Encrypt ?? 0).toBe(calls.Encrypt ?? 0);

    const after = decodeEnvelope(moved);
    expect(invariant(after)).toEqual(invariant(before));
    expect(after.entries[0]).toMatchObject({ providerId: "aws-kms", keyRef: w.awsKey.arn });
    expect(w.aws.inspectCiphertext(after.entries[0]!.wrapped).version).toBe(1);
    expect(await openWithOnly(w.awsKms(), moved)).toBe(PLAINTEXT);
  });

  it("Vault: after rotate + refresh, rewrap is one transit rewrap call and one decrypt (the check)", async () => {
    const vault = await w.vaultTransit();
    const envelope = new Envelope({ encrypt: vault, cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const before = decodeEnvelope(sealed);
    const from = before.entries[0]!.keyRef;
    expect(from).toMatch(/^transit\/keys\/pii@v\d+$/);

    await w.rotateVaultKey();
    await vault.refresh();
    const version = Number(from.split("@v")[1]) + 1;
    expect(vault.keyRef).toBe(`transit/keys/pii@v${version}`);
    const calls = { ...w.vault.calls };
    const moved = await envelope.rewrap(sealed, { to: vault, context: CONTEXT });
    expect(w.vault.calls.rewrap ?? 0).toBe((calls.rewrap ?? 0) + 1);
    expect(w.vault.calls.decrypt ?? 0).toBe((calls.decrypt ?? 0) + 1);
    expect(w.vault.calls.encrypt ?? 0).toBe(calls.encrypt ?? 0);

    const after = decodeEnvelope(moved);
    expect(invariant(after)).toEqual(invariant(before));
    expect(after.entries[0]!.keyRef).toBe(`transit/keys/pii@v${version}`);
    expect(bytes(after.entries[0]!.wrapped).toString("latin1")).toMatch(
      new RegExp(`^vault:v${version}:`),
    );
    expect(await openWithOnly(await w.vaultTransit(), moved)).toBe(PLAINTEXT);
  });
});
