import {
  ProviderError,
  type RetryOptions,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { secretFromText } from "@envelope/core/internal";
import type { TokenSource } from "./auth.js";
import type { VaultClient, VaultRequestOptions } from "./client.js";
import { classifyVaultError, describeFailure, type FailureHint } from "./errors.js";
import { ciphertextVersion, formatKeyRef, PROVIDER_ID } from "./key-ref.js";
import { recordHeaders, type SeenHeaders, tagHeaders } from "./response-headers.js";

export interface TransitSettings {
  client: VaultClient;
  auth: TokenSource;
  mount: string;
  name: string;
  timeoutMs: number;
  retry: RetryOptions;
  /** Told every key version Vault reports, so keyRef follows the newest. */
  noteVersion(version: number): void;
}

/**
 * The transit HTTP calls of one key: token, per-attempt timeout, bounded retries and typed
 * errors around each, one re-login after a 403 with AppRole, and Vault's answers checked
 * (a `vault:vN:` ciphertext, a base64 plaintext) before anything is returned.
 */
export function transit(s: TransitSettings) {
  const retry: RetryOptions = { ...s.retry, timeoutMs: s.timeoutMs };
  const { mount, name } = s;

  async function call(
    operation: string,
    ref: string,
    hint: FailureHint,
    fn: (o: VaultRequestOptions) => Promise<unknown>,
  ): Promise<unknown> {
    const target: RetryTarget = { provider: PROVIDER_ID, keyRef: ref, operation };
    return withRetry(
      target,
      async () => {
        const headers = await s.auth.headers(s.timeoutMs);
        // Vault's Retry-After (rate-limit quotas) reaches the classifier through the error.
        const seen: SeenHeaders = {};
        const send = (h: Record<string, string>) =>
          recordHeaders(seen, () => fn({ headers: h, timeout: s.timeoutMs })).catch(
            (error: unknown) => {
              throw tagHeaders(error, seen);
            },
          );
        try {
          return await send(headers);
        } catch (error) {
          if (!s.auth.canRelogin || describeFailure(error).status !== 403) throw error;
          s.auth.invalidate(headers["X-Vault-Token"]);
          return await send(await s.auth.headers(s.timeoutMs));
        }
      },
      (error) => classifyVaultError(error, target, hint),
      retry,
    );
  }

  return {
    call,
    read: (operation: string, ref: string, path: string) =>
      call(operation, ref, PLAIN, (o) => s.client.read(`${mount}/${path}`, o)),
    write: (operation: string, ref: string, hint: FailureHint, path: string, data: unknown) =>
      call(operation, ref, hint, (o) => s.client.write(`${mount}/${path}/${name}`, data, o)),

    /** The entry of a `vault:vN:` ciphertext in Vault's answer. */
    toEntry(body: unknown, operation: string): WrappedKey {
      const ciphertext = (body as { data?: { ciphertext?: unknown } } | undefined)?.data
        ?.ciphertext;
      const version = typeof ciphertext === "string" ? ciphertextVersion(ciphertext) : undefined;
      if (typeof ciphertext !== "string" || version === undefined)
        throw contract(`${operation} returned no vault:vN: ciphertext`);
      s.noteVersion(version);
      return {
        providerId: PROVIDER_ID,
        keyRef: formatKeyRef({ mount, name, version }),
        wrapped: Buffer.from(ciphertext, "latin1"),
      };
    },

    /** The base64 plaintext in Vault's answer, as bytes. */
    plaintextKey(body: unknown, operation: string): Buffer {
      const plaintext = (body as { data?: { plaintext?: unknown } } | undefined)?.data?.plaintext;
      if (typeof plaintext !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(plaintext)) {
        throw contract(`${operation} returned no base64 plaintext`);
      }
      return secretFromText(plaintext, "base64");
    },
  };
}

/** Classification hint of calls that do not unwrap. */
export const PLAIN: FailureHint = { unwrapping: false, derivedWithContext: false };

export function contract(problem: string): ProviderError {
  return new ProviderError(
    "ENVELOPE_KMS_ERROR",
    `${PROVIDER_ID}: Vault's answer was not what the transit API returns (${problem}). Check that the address and mount point at a Vault transit engine.`,
    { details: { provider: PROVIDER_ID } },
  );
}
