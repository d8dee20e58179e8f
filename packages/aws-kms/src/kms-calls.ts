import {
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  type KMSClient,
  ReEncryptCommand,
} from "@aws-sdk/client-kms";
import {
  type EncryptionContext,
  type GeneratedDataKey,
  ProviderError,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { type AwsCredentials, buildClient, type KmsClientLike } from "./client.js";
import { mapContext } from "./context.js";
import { classifyAwsError } from "./errors.js";
import { type KmsKeyId, parseKeyId } from "./key-ref.js";
import type { ResolvedAwsOptions } from "./options.js";

/**
 * A host clock more than 5 minutes off gets "Signature expired" (InvalidSignatureException)
 * from KMS. The SDK then corrects the client's clock offset from the answer's Date header
 * and flags the error `$metadata.clockSkewCorrected`; its own retry strategy (off here,
 * `maxAttempts: 1`) would send the request again at once. Do the same, once: the request is
 * re-signed with the corrected time. Any other error, or a second one, is the caller's.
 */
async function resendIfClockCorrected<T>(
  send: (signal: AbortSignal) => Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  try {
    return await send(signal);
  } catch (error) {
    const metadata = (error as { $metadata?: { clockSkewCorrected?: unknown } } | null)?.$metadata;
    if (metadata?.clockSkewCorrected !== true || signal.aborted) throw error;
    return send(signal);
  }
}

/** Provider id written into every envelope entry. */
export const AWS_KMS_PROVIDER_ID = "aws-kms";

/**
 * Regions one provider opens clients for, at most. An entry names its key's region (with
 * `discovery` or `decryptKeys`), so without a bound, values planted in the database with a
 * new region each would make one client each, kept until `destroy()`. AWS has about 40.
 */
export const MAX_REGION_CLIENTS = 64;

export interface KmsCallSettings extends ResolvedAwsOptions {
  endpoint: string | undefined;
  credentials: AwsCredentials | undefined;
  client: KmsClientLike | undefined;
  /** Called with each key ARN KMS reports for the configured key (an alias learns them). */
  onKeyArn(arn: string): void;
}

/**
 * The four KMS operations with retries, typed errors and checked answers: one client per
 * region (built lazily, SDK retries off), the mapped EncryptionContext and grant tokens on
 * every call. Returns entries; never decides which keys are allowed (see key-policy.ts).
 */
export function kmsCalls(s: KmsCallSettings) {
  const keyRef = s.key.raw;
  const built = new Map<string, KMSClient>();
  const tokens = s.grantTokens.length > 0 ? [...s.grantTokens] : undefined;

  const clientFor = (region: string | undefined): KmsClientLike => {
    if (s.client) return s.client;
    let client = built.get(region ?? "");
    if (!client) {
      // The configured key's own region is always served.
      if (built.size >= MAX_REGION_CLIENTS && region !== (s.key.region ?? s.home)) {
        throw tooManyRegions(region);
      }
      client = buildClient({
        region,
        endpoint: s.endpoint,
        credentials: s.credentials,
        timeoutMs: s.retry.timeoutMs ?? 10_000,
      });
      built.set(region ?? "", client);
    }
    return client;
  };
  const tooManyRegions = (region: string | undefined) =>
    new ProviderError(
      "ENVELOPE_UNWRAP_FAILED",
      `aws-kms: this value's entry names a key in region "${String(region).slice(0, 40)}", and the provider already has clients for ${MAX_REGION_CLIENTS} regions, the most it opens. Values naming that many regions were likely written by someone else: check where they came from, or narrow discovery to your accounts (discovery: { accountIds }).`,
      { details: { provider: AWS_KMS_PROVIDER_ID, keyRef, region: String(region).slice(0, 40) } },
    );
  const call = <T>(target: RetryTarget, send: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withRetry(
      target,
      (signal) => resendIfClockCorrected(send, signal),
      (error) => classifyAwsError(error, target),
      s.retry,
    );
  const target = (operation: string, ref = keyRef): RetryTarget => ({
    provider: AWS_KMS_PROVIDER_ID,
    keyRef: ref,
    operation,
  });
  const kmsArgs = (context: EncryptionContext) => ({
    EncryptionContext: mapContext(context, s.kmsContext),
    GrantTokens: tokens,
  });
  const contract = (operation: string, what: string, ref = keyRef) =>
    new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `aws-kms ${operation} for key "${ref}" ${what}. The endpoint is not behaving like AWS KMS; nothing was written.`,
      { details: { provider: AWS_KMS_PROVIDER_ID, keyRef: ref, operation } },
    );
  const region = s.key.region ?? s.home;
  // KMS answers GenerateDataKey / Encrypt / ReEncrypt with the ARN of the key it used. When
  // the configured key names one key (an ARN or a key id), the answer must be that key: an
  // entry labelled with another key's ARN but wrapped under ours would never open. (An alias
  // may point at any key: its answer is recorded as given.)
  const isConfiguredKey = (ref: KmsKeyId): boolean => {
    if (s.key.kind === "key-arn") return ref.raw === s.key.raw;
    if (s.key.kind === "key-id") {
      return ref.resource === `key/${s.key.raw}` && (region === undefined || ref.region === region);
    }
    return true;
  };
  const toEntry = (arn: string | undefined, blob: Uint8Array | undefined, operation: string) => {
    const ref = arn === undefined ? undefined : parseKeyId(arn);
    if (ref?.kind !== "key-arn" || !(blob instanceof Uint8Array) || blob.length === 0) {
      throw contract(operation, "returned no key ARN or no ciphertext");
    }
    if (!isConfiguredKey(ref)) {
      throw contract(operation, `answered for another key (${ref.raw})`);
    }
    s.onKeyArn(ref.raw);
    return { providerId: AWS_KMS_PROVIDER_ID, keyRef: ref.raw, wrapped: blob } as WrappedKey;
  };

  return {
    async generateDataKey(context: EncryptionContext): Promise<GeneratedDataKey> {
      const out = await call(target("GenerateDataKey"), (abortSignal) =>
        clientFor(region).send(
          new GenerateDataKeyCommand({ KeyId: keyRef, KeySpec: "AES_256", ...kmsArgs(context) }),
          { abortSignal },
        ),
      );
      try {
        const entry = toEntry(out.KeyId, out.CiphertextBlob, "GenerateDataKey");
        if (!(out.Plaintext instanceof Uint8Array)) {
          throw contract("GenerateDataKey", "returned no plaintext data key");
        }
        return { dataKey: out.Plaintext, entry };
      } catch (error) {
        out.Plaintext?.fill(0);
        throw error;
      }
    },

    async encrypt(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
      const out = await call(target("Encrypt"), (abortSignal) =>
        clientFor(region).send(
          new EncryptCommand({
            KeyId: keyRef,
            Plaintext: dataKey,
            EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            ...kmsArgs(context),
          }),
          { abortSignal },
        ),
      );
      return toEntry(out.KeyId, out.CiphertextBlob, "Encrypt");
    },

    /** Decrypt naming `ref` (the entry's key ARN, or its replica in the home region). */
    async decrypt(entry: WrappedKey, ref: KmsKeyId, context: EncryptionContext) {
      const out = await call(target("Decrypt", ref.raw), (abortSignal) =>
        clientFor(ref.region).send(
          new DecryptCommand({
            CiphertextBlob: entry.wrapped,
            KeyId: ref.raw,
            EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            ...kmsArgs(context),
          }),
          { abortSignal },
        ),
      );
      // KMS must answer with the key we named; anything else is not KMS behaviour.
      if (out.KeyId !== ref.raw || !(out.Plaintext instanceof Uint8Array)) {
        out.Plaintext?.fill(0);
        throw contract("Decrypt", "answered for another key or without plaintext", ref.raw);
      }
      return out.Plaintext;
    },

    /** ReEncrypt inside KMS from `source` (in the home region) to the configured key. */
    async reEncrypt(entry: WrappedKey, source: KmsKeyId, context: EncryptionContext) {
      const mapped = mapContext(context, s.kmsContext);
      const out = await call(target("ReEncrypt"), (abortSignal) =>
        clientFor(region).send(
          new ReEncryptCommand({
            CiphertextBlob: entry.wrapped,
            SourceKeyId: source.raw,
            SourceEncryptionContext: mapped,
            DestinationKeyId: keyRef,
            DestinationEncryptionContext: mapped,
            SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            GrantTokens: tokens,
          }),
          { abortSignal },
        ),
      );
      return toEntry(out.KeyId, out.CiphertextBlob, "ReEncrypt");
    },

    /** Closes the HTTP connections of the clients built here (never an injected one). */
    destroy(): void {
      for (const client of built.values()) client.destroy();
      built.clear();
    },
  };
}
