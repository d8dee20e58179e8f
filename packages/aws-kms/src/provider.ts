import { inspect } from "node:util";
import { type KeyProvider, ProviderError, type WrappedKey } from "@envelope/core";
import { mappedContextKey } from "./context.js";
import { keyPolicy } from "./key-policy.js";
import { type KmsKeyId, parseKeyId } from "./key-ref.js";
import { AWS_KMS_PROVIDER_ID, kmsCalls } from "./kms-calls.js";
import { type AwsKmsProviderOptions, resolveOptions } from "./options.js";

export { AWS_KMS_PROVIDER_ID } from "./kms-calls.js";
export type { AwsKmsProviderOptions, DiscoveryOption } from "./options.js";

/** The AWS KMS key provider; `destroy()` closes the clients it built. */
export interface AwsKmsProvider extends KeyProvider {
  readonly region: string | undefined;
  /** Closes HTTP connections of the clients this provider created (not an injected one). */
  destroy(): void;
}

/**
 * Master keys in AWS KMS: GenerateDataKey for new data keys (one call), Encrypt for
 * extra wraps, Decrypt with the recorded key ARN and the mapped EncryptionContext, and
 * ReEncrypt for rewrap inside KMS (the data key never reaches this process).
 *
 * @example
 * const envelope = new Envelope({
 *   encrypt: awsKmsProvider({ keyId: "arn:aws:kms:eu-west-1:111122223333:alias/pii" }),
 * });
 */
export function awsKmsProvider(options: AwsKmsProviderOptions): AwsKmsProvider {
  const o = resolveOptions(options);
  const { key, home } = o;
  const keyRef = key.raw;
  const learned = new Set<string>(); // key ARNs an alias resolved to in this process
  const policy = keyPolicy(o, learned);
  const kms = kmsCalls({
    ...o,
    endpoint: options.endpoint,
    credentials: options.credentials,
    client: options.client,
    onKeyArn: (arn) => {
      if (key.kind === "alias-arn" || key.kind === "alias-name") learned.add(arn);
    },
  });

  const entryRef = (entry: WrappedKey, operation: string): KmsKeyId => {
    const ref = parseKeyId(entry.keyRef);
    if (ref?.kind !== "key-arn") {
      throw new ProviderError(
        "ENVELOPE_UNWRAP_FAILED",
        `aws-kms ${operation}: the entry's key reference is not a KMS key ARN, so it was not written by this provider. Check which provider wrote it (envelope.inspect).`,
        {
          details: { provider: AWS_KMS_PROVIDER_ID, keyRef: entry.keyRef.slice(0, 200), operation },
        },
      );
    }
    return ref;
  };

  const provider: AwsKmsProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: AWS_KMS_PROVIDER_ID,
    keyRef,
    region: home,
    handles(entry) {
      if (entry.providerId !== AWS_KMS_PROVIDER_ID) return false;
      const ref = parseKeyId(entry.keyRef);
      return ref?.kind === "key-arn" && policy.allowed(ref);
    },
    generateDataKey: (request) => kms.generateDataKey(request.context),
    wrap: (dataKey, request) => kms.encrypt(dataKey, request.context),
    unwrap: (entry, request) =>
      kms.decrypt(entry, policy.decryptTarget(entryRef(entry, "Decrypt")), request.context),
    async rewrap(entry, request): Promise<WrappedKey> {
      const region = key.region ?? home;
      let source = policy.decryptTarget(entryRef(entry, "ReEncrypt"));
      if (region !== undefined && source.region !== region) {
        if (!(o.mrkAware && source.multiRegion)) {
          // ReEncrypt works within one region. Across regions (non-MRK) the data key must
          // pass through this process: Decrypt there, Encrypt here.
          const dataKey = await kms.decrypt(entry, source, request.context);
          try {
            return await kms.encrypt(dataKey, request.context);
          } finally {
            dataKey.fill(0);
          }
        }
        source = {
          ...source,
          region,
          raw: source.raw.replace(`:kms:${source.region}:`, `:kms:${region}:`),
        };
      }
      return kms.reEncrypt(entry, source, request.context);
    },
    kmsContextKey: (context) => mappedContextKey(context, o.kmsContext),
    destroy: () => kms.destroy(),
    toJSON: () => ({
      provider: AWS_KMS_PROVIDER_ID,
      keyRef,
      region: home,
      kmsContext: o.kmsContext,
      decryptKeys: o.decryptKeys.map((k) => k.raw),
    }),
    [inspect.custom]: () =>
      `AwsKmsProvider { keyRef: '${keyRef}', region: '${home ?? "(sdk default)"}' }`,
  };
  return provider;
}
