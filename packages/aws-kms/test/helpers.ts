import { type AwsKmsProvider, type AwsKmsProviderOptions, awsKmsProvider } from "@envelope/aws-kms";
import { type EnvelopeError, EnvelopeError as EnvelopeErrorClass } from "@envelope/core";
import { type AwsKmsTestServer, startAwsKmsServer } from "../../../test/servers/aws-kms.js";

export const CONTEXT = { table: "users", column: "email", id: "42" } as const;

/** A server plus a factory of providers pointed at it with the server's static credentials. */
export interface Harness {
  kms: AwsKmsTestServer;
  provider(options: Partial<AwsKmsProviderOptions> & { keyId: string }): AwsKmsProvider;
  close(): Promise<void>;
}

export async function harness(): Promise<Harness> {
  const kms = await startAwsKmsServer();
  const made: AwsKmsProvider[] = [];
  return {
    kms,
    provider(options) {
      const p = awsKmsProvider({
        endpoint: kms.url,
        credentials: kms.credentials,
        // Fast backoff keeps fault tests quick; the bound (attempts) is what they check.
        retry: { baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 5000 },
        ...options,
      });
      made.push(p);
      return p;
    },
    async close() {
      for (const p of made) p.destroy();
      await kms.close();
    },
  };
}

/** The rejection of `promise`, asserted to be an EnvelopeError. */
export async function failure(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  if (!EnvelopeErrorClass.isInstance(error)) throw error;
  return error;
}
