import {
  type DecryptCommand,
  type DecryptCommandOutput,
  type EncryptCommand,
  type EncryptCommandOutput,
  type GenerateDataKeyCommand,
  type GenerateDataKeyCommandOutput,
  KMSClient,
  type KMSClientConfig,
  type ReEncryptCommand,
  type ReEncryptCommandOutput,
} from "@aws-sdk/client-kms";

/** Per-call options the provider passes: the attempt's abort signal. */
export interface KmsSendOptions {
  abortSignal?: AbortSignal;
}

/**
 * The narrow part of `KMSClient` this provider calls. Inject a `KMSClient` (it satisfies
 * this), or anything that speaks the same four commands (a test double, a client with
 * custom middleware).
 */
export interface KmsClientLike {
  send(
    command: GenerateDataKeyCommand,
    options?: KmsSendOptions,
  ): Promise<GenerateDataKeyCommandOutput>;
  send(command: EncryptCommand, options?: KmsSendOptions): Promise<EncryptCommandOutput>;
  send(command: DecryptCommand, options?: KmsSendOptions): Promise<DecryptCommandOutput>;
  send(command: ReEncryptCommand, options?: KmsSendOptions): Promise<ReEncryptCommandOutput>;
}

/** Static credentials, or any provider function the SDK accepts (default: the SDK's chain). */
export type AwsCredentials = KMSClientConfig["credentials"];

export interface ClientSettings {
  region: string | undefined;
  endpoint: string | undefined;
  credentials: AwsCredentials | undefined;
  timeoutMs: number;
}

/**
 * A KMSClient for one region. The SDK's own retries are switched off (maxAttempts 1):
 * the provider retries with core's withRetry, so `retry.attempts` is the total number
 * of HTTP requests per operation.
 */
export function buildClient(settings: ClientSettings): KMSClient {
  return new KMSClient({
    ...(settings.region ? { region: settings.region } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    maxAttempts: 1,
    requestHandler: { connectionTimeout: settings.timeoutMs, requestTimeout: settings.timeoutMs },
  });
}
