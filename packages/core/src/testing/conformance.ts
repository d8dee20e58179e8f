import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Envelope } from "../client.js";
import type { EnvelopeError, ErrorCode } from "../errors.js";
import type { EncryptionContext } from "../format/context.js";
import { decodeEnvelope } from "../format/decode.js";
import { supportsNativeRewrap } from "../providers/capabilities.js";
import type { KeyProvider } from "../providers/types.js";
import { failure } from "./failure.js";
import { recordingProvider } from "./recording.js";
import { findCanaries, secretForms } from "./surfaces.js";

type MaybePromise<T> = T | Promise<T>;
type TestFn = (name: string, fn: () => Promise<void>, timeoutMs?: number) => void;

/** The test functions of your runner (vitest, jest, node:test): the suite imports none. */
export interface ConformanceTestApi {
  describe(name: string, fn: () => void): void;
  /** `it` of the runner; its `it.skip`, when present, reports checks that do not apply. */
  it: TestFn & { skip?: TestFn };
}

/** Faults the suite injects, and the error code each must surface as. */
export const FAULT_CODES = {
  throttle: "ENVELOPE_KMS_THROTTLED",
  "5xx": "ENVELOPE_KMS_UNAVAILABLE",
  timeout: "ENVELOPE_KMS_TIMEOUT",
  down: "ENVELOPE_KMS_UNAVAILABLE",
  disabled: "ENVELOPE_KEY_DISABLED",
  deleted: "ENVELOPE_KEY_NOT_FOUND",
  denied: "ENVELOPE_KMS_ACCESS_DENIED",
} as const satisfies Record<string, ErrorCode>;

export type FaultKind = keyof typeof FAULT_CODES;

/** Starts a fault against `provider`'s key; returns the function that ends it. */
export type FaultInjector = (provider: KeyProvider) => MaybePromise<() => MaybePromise<void>>;

/** What the suite needs to know about the provider under test. */
export interface ConformanceSubject {
  /** Shown in the test names, e.g. "aws-kms against the test KMS server". */
  readonly name: string;
  /**
   * A provider for the key under test. Called once per test: return one for a fresh key
   * where the KMS allows it, so a fault (a disabled or deleted key) ends with its test.
   * Give it fast backoff for the fault tests, and a short retry timeout (`retry.timeoutMs`)
   * when `fault` is `"timeout"`: only that test waits for it. A short timeout on the others
   * lets a slow machine turn their quick errors into timeouts.
   */
  provider(test?: { fault?: FaultKind }): MaybePromise<KeyProvider>;
  /** A provider of the same kind for another key: it must not open the first key's values. */
  otherKey(): MaybePromise<KeyProvider>;
  /** The KMS itself binds the context (AWS EncryptionContext, a derived Vault key). */
  readonly bindsContext?: boolean;
  /** The provider rewraps inside its KMS (`NativeRewrap`). Checked against the provider. */
  readonly nativeRewrap?: boolean;
  /** Makes a new version of the provider's key in the KMS (refreshKeys must then move to it). */
  rotate?(provider: KeyProvider): MaybePromise<void>;
  /** How to cause each fault; a fault without an injector is reported as skipped. */
  readonly faults?: Partial<Record<FaultKind, FaultInjector>>;
  /** Strings that must never show on an error surface (tokens, secret access keys). */
  readonly secrets?: readonly string[];
  /** Per-test timeout in ms. Default 30000. */
  readonly timeoutMs?: number;
}

const CONTEXT: EncryptionContext = { table: "users", column: "email", id: "42" };
const OTHER_CONTEXT: EncryptionContext = { table: "users", column: "email", id: "43" };
const WRONG_KEY_CODES = new Set<ErrorCode>([
  "ENVELOPE_NO_MATCHING_KEY",
  "ENVELOPE_UNWRAP_FAILED",
  "ENVELOPE_KEY_NOT_FOUND",
  "ENVELOPE_KMS_ACCESS_DENIED",
  "ENVELOPE_COMMITMENT_MISMATCH",
  "ENVELOPE_DECRYPT_FAILED",
]);
const WRONG_CONTEXT_CODES = new Set<ErrorCode>([
  "ENVELOPE_DECRYPT_FAILED",
  "ENVELOPE_CONTEXT_MISMATCH",
  "ENVELOPE_KMS_CONTEXT_MISMATCH",
]);

/**
 * Registers the provider conformance suite with your test runner: round trip, wrong key,
 * wrong context, `refreshKeys()` moving to a new key version, native rewrap without a
 * client-side unwrap, one typed error per fault (throttle, 5xx, timeout, down, disabled,
 * deleted, denied), and no secret on any error surface. Every provider package runs it;
 * run it on your own provider the same way.
 *
 * @example
 * import { describe, it } from "vitest";
 * import { runProviderConformance } from "@envelope/core/testing";
 * runProviderConformance({ describe, it }, {
 *   name: "my-kms", provider: () => myKmsProvider({ key: "a" }), otherKey: () => myKmsProvider({ key: "b" }),
 * });
 */
export function runProviderConformance(api: ConformanceTestApi, subject: ConformanceSubject): void {
  const timeout = subject.timeoutMs ?? 30_000;
  const it = (name: string, fn: () => Promise<void>) => api.it(name, fn, timeout);
  const notApplicable = (name: string, why: string) => {
    if (api.it.skip) api.it.skip(`${name} (${why})`, async () => {});
  };
  const noSecrets = (error: unknown, extra: readonly string[] = []) => {
    const hits = findCanaries(error, [...(subject.secrets ?? []), ...extra]);
    assert.deepEqual(hits, [], "a secret shows on an error surface");
  };

  api.describe(`provider conformance: ${subject.name}`, () => {
    it("round trip: what it wraps it unwraps, through the provider and an Envelope", async () => {
      const provider = await subject.provider();
      const plaintext = `conformance ${randomBytes(8).toString("hex")}`;
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const sealed = await envelope.encrypt(plaintext, { context: CONTEXT });
      assert.equal(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" }), plaintext);
      const dataKey = randomBytes(32);
      const entry = await provider.wrap(Buffer.from(dataKey), { context: CONTEXT });
      assert.equal(entry.providerId, provider.id, "entry.providerId is the provider's id");
      assert.ok(entry.keyRef.length > 0, "entry has a key reference");
      assert.ok(provider.handles(entry), "the provider handles its own entries");
      const back = await provider.unwrap(entry, { context: CONTEXT });
      assert.ok(Buffer.from(back).equals(dataKey), "unwrap returns the wrapped data key");
    });

    it("wrong key: another key's provider cannot open the value (typed error)", async () => {
      const provider = await subject.provider();
      const plaintext = `wrong key ${randomBytes(8).toString("hex")}`;
      const sealed = await new Envelope({ encrypt: provider, cache: false }).encrypt(plaintext, {
        context: CONTEXT,
      });
      const other = new Envelope({ encrypt: await subject.otherKey(), cache: false });
      const error = await failure(other.decrypt(sealed, { context: CONTEXT }));
      assert.ok(WRONG_KEY_CODES.has(error.code), `unexpected code ${error.code}`);
      noSecrets(error, [plaintext]);
    });

    it("wrong context: the value does not open under another context (typed error)", async () => {
      const provider = await subject.provider();
      const plaintext = `wrong context ${randomBytes(8).toString("hex")}`;
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const sealed = await envelope.encrypt(plaintext, { context: CONTEXT });
      const error = await failure(envelope.decrypt(sealed, { context: OTHER_CONTEXT }));
      assert.ok(WRONG_CONTEXT_CODES.has(error.code), `unexpected code ${error.code}`);
      noSecrets(error, [plaintext]);
      if (subject.bindsContext) {
        const dataKey = randomBytes(32);
        const entry = await provider.wrap(Buffer.from(dataKey), { context: CONTEXT });
        const kmsError = await failure(provider.unwrap(entry, { context: OTHER_CONTEXT }));
        assert.equal(kmsError.code, "ENVELOPE_KMS_CONTEXT_MISMATCH");
        noSecrets(kmsError, secretForms(dataKey));
      }
    });

    if (subject.rotate) {
      it("refreshKeys() moves the provider to the new key version", async () => {
        const provider = await subject.provider();
        const envelope = new Envelope({ encrypt: provider, cache: false });
        const old = await envelope.encrypt("before rotation", { context: CONTEXT });
        await envelope.refreshKeys();
        const before = provider.keyRef;
        await subject.rotate!(provider);
        await envelope.refreshKeys();
        assert.notEqual(provider.keyRef, before, "keyRef names the new version");
        const fresh = decodeEnvelope(await envelope.encrypt("after", { context: CONTEXT }));
        assert.equal(fresh.entries[0]!.keyRef, provider.keyRef, "new values use the new version");
        assert.equal(
          await envelope.decrypt(old, { context: CONTEXT, as: "text" }),
          "before rotation",
        );
      });
    } else {
      notApplicable("refreshKeys() moves the provider to the new key version", "no rotate()");
    }

    it(`native rewrap: ${subject.nativeRewrap ? "inside the KMS, no client-side unwrap of the old entry" : "not claimed, and not offered"}`, async () => {
      const inner = await subject.provider();
      assert.equal(supportsNativeRewrap(inner), subject.nativeRewrap === true, "nativeRewrap");
      if (!subject.nativeRewrap) return;
      const { provider, unwrapped, rewrapped } = recordingProvider(inner);
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const sealed = await envelope.encrypt("rewrap me", { context: CONTEXT });
      const source = decodeEnvelope(sealed).entries[0]!;
      if (subject.rotate) {
        await subject.rotate(inner);
        await envelope.refreshKeys();
      }
      unwrapped.length = 0;
      const out = await envelope.rewrap(sealed, { to: provider, context: CONTEXT, force: true });
      assert.equal(rewrapped.length, 1, "one native rewrap call");
      const sourceBytes = Buffer.from(source.wrapped);
      assert.ok(
        unwrapped.every((e) => !Buffer.from(e.wrapped).equals(sourceBytes)),
        "the old entry was never unwrapped in this process",
      );
      assert.ok(
        Buffer.from(decodeEnvelope(out as Buffer).body).equals(
          Buffer.from(decodeEnvelope(sealed).body),
        ),
        "the body is unchanged",
      );
      assert.equal(await envelope.decrypt(out, { context: CONTEXT, as: "text" }), "rewrap me");
    });

    for (const kind of Object.keys(FAULT_CODES) as FaultKind[]) {
      const inject = subject.faults?.[kind];
      const name = `fault ${kind}: ${FAULT_CODES[kind]} naming the provider, no secret shown`;
      if (!inject) {
        notApplicable(name, "no injector");
        continue;
      }
      it(name, async () => {
        const provider = await subject.provider({ fault: kind });
        const envelope = new Envelope({ encrypt: provider, cache: false });
        const plaintext = `fault ${kind} ${randomBytes(8).toString("hex")}`;
        const sealed = await envelope.encrypt(plaintext, { context: CONTEXT });
        const dataKey = randomBytes(32);
        const entry = await provider.wrap(Buffer.from(dataKey), { context: CONTEXT });
        const end = await inject(provider);
        let errors: EnvelopeError[];
        try {
          errors = [
            await failure(envelope.decrypt(sealed, { context: CONTEXT })),
            await failure(provider.unwrap(entry, { context: CONTEXT })),
          ];
        } finally {
          await end();
        }
        for (const error of errors) {
          assert.equal(error.code, FAULT_CODES[kind]);
          assert.ok(
            error.details.provider === provider.id || error.message.includes(provider.id),
            "the error names the provider",
          );
          noSecrets(error, [plaintext, ...secretForms(dataKey)]);
        }
      });
    }
  });
}
