import { bodyAad } from "../crypto/aad.js";
import { verifyBody } from "../crypto/verify-body.js";
import { ConfigError } from "../errors.js";
import { type EncryptionContext, snapshotContext } from "../format/context.js";
import { encodeEnvelope } from "../format/encode.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { parse, resolveContext, type Sealed } from "../format/parse.js";
import { checkEntryCount } from "../format/validate.js";
import type { KeyRing } from "../keyring/key-ring.js";
import { supportsNativeRewrap } from "../providers/capabilities.js";
import { checkProvider } from "../providers/checks.js";
import { nativeRewrapError } from "../providers/failures.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";
import { type NewEntry, planRewrap, type RewrapPlanOptions, rewrappedEntries } from "./plan.js";

export interface RewrapRequest extends RewrapPlanOptions {
  /** The distinct target providers, checked by `rewrapTargets`. */
  targets: readonly KeyProvider[];
  context?: EncryptionContext | undefined;
  verifyBody?: boolean | undefined;
}

/** `to` as a list of distinct providers: the same target twice would write one key twice. */
export function rewrapTargets(to: KeyProvider | readonly KeyProvider[]): KeyProvider[] {
  const targets = [...new Set(Array.isArray(to) ? to : [to as KeyProvider])];
  if (targets.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "rewrap: `to` must name at least one key provider.",
    );
  }
  for (const [i, p] of targets.entries()) checkProvider(p, `to[${i}]`);
  return targets;
}

/**
 * Carries out the plan of `planRewrap` for one sealed value with `ring`; see
 * `Envelope.rewrap` for the guarantees. Returns the new bytes and whether every new entry
 * came from a KMS's native rewrap.
 */
export async function rewrapSealed(
  ring: KeyRing,
  sealed: Sealed,
  request: RewrapRequest,
): Promise<{ out: Buffer; native: boolean }> {
  const parts = parse(sealed);
  const { context, canonical } = resolveContext(parts, snapshotContext(request.context));
  const keyRequest: KeyRequest = { context };
  const plan = planRewrap(parts.entries, request.targets, request);
  const fresh: WrappedKey[] = [];
  let verified: VerifiedKey | undefined;
  const dataKeyOf = async (): Promise<VerifiedKey> => {
    if (!verified) {
      const found = await ring.verifiedDataKey(parts, keyRequest);
      verified = { dataKey: found.dataKey, encryptionKey: found.encryptionKey, entry: found.entry };
    }
    return verified;
  };
  // With verifyBody and a native rewrap, the body is checked with the keys the new entry's
  // proof unwraps (2 KMS calls per value, not 3: the old entry is not unwrapped).
  const bodyAfterNative =
    Boolean(request.verifyBody) && plan.some((step) => step.action === "native");
  // native: every new entry was made inside a KMS (none wrapped here).
  let nativeCalls = 0;
  let wrappedHere = false;
  const make = async (target: KeyProvider, how: NewEntry): Promise<WrappedKey> => {
    if (how.action === "native" && supportsNativeRewrap(target)) {
      nativeCalls++;
      const entry = await ring.nativeRewrap(target, how.source, keyRequest);
      if (!verified && request.verifyBody) {
        verified = await ring.provenNativeEntry(entry, target, parts, keyRequest);
      } else if (!(await ring.opensToCommitment(entry, [target], parts, keyRequest, true))) {
        throw nativeRewrapError(target, entry);
      }
      return entry;
    }
    wrappedHere = true;
    return ring.wrap(target, (await dataKeyOf()).dataKey, keyRequest);
  };
  try {
    if (request.verifyBody && !bodyAfterNative) checkBody(parts, canonical, await dataKeyOf());
    for (const step of plan) {
      if (step.action !== "keep") {
        fresh.push(await make(step.target, step));
        continue;
      }
      const proven =
        !step.proof ||
        verified?.entry === step.entry ||
        (await ring.opensToCommitment(step.entry, [step.target], parts, keyRequest));
      // Bogus, or unprovable (an encrypt-only target): replaced by a proven entry.
      fresh.push(proven ? step.entry : await make(step.target, step.otherwise));
    }
    if (bodyAfterNative) checkBody(parts, canonical, await dataKeyOf());
  } finally {
    verified?.dataKey.fill(0);
    verified?.encryptionKey.fill(0);
  }
  const entries = rewrappedEntries(parts.entries, fresh, request.keep);
  checkEntryCount(entries.length);
  const out = encodeEnvelope({ ...parts, entries });
  return { out, native: nativeCalls > 0 && !wrappedHere };
}

/** A data key proven against the value's commitment, its message key, and its entry. */
interface VerifiedKey {
  readonly dataKey: Buffer;
  readonly encryptionKey: Buffer;
  readonly entry: WrappedKey;
}

/** Authenticates the body (GCM tag under the context) with its message key; keeps no plaintext. */
function checkBody(parts: EnvelopeParts, canonical: Buffer, key: VerifiedKey): void {
  verifyBody(
    key.encryptionKey,
    parts.body,
    bodyAad(parts.flags, parts.messageId, canonical, parts.suite),
    parts.flags,
  );
}
