import { ProviderError } from "@envelope/core";

export const PROVIDER_ID = "hierarchical";

const RESTORE =
  "Restore the key store from its latest backup (see the @envelope/hierarchical README, 'Backup and restore'), then run verifyKeyStore().";

/** The envelope names an intermediate key the store does not hold. */
export function keyNotFound(id: string, store: string): ProviderError {
  return new ProviderError(
    "ENVELOPE_KEY_NOT_FOUND",
    `hierarchical: intermediate key ${id} is not in key store ${store}. Records sealed under it cannot be opened until it is back. ${RESTORE}`,
    { details: { provider: PROVIDER_ID, keyRef: id, store } },
  );
}

/** A stored record is damaged (checksum) or unwraps to the wrong key (key check). */
export function corruptRecord(
  id: string,
  store: string,
  problem: string,
  cause?: unknown,
): ProviderError {
  return new ProviderError(
    "ENVELOPE_BAD_KEY",
    `hierarchical: intermediate key record ${id} in key store ${store} is corrupted (${problem}). ${RESTORE}`,
    { cause, details: { provider: PROVIDER_ID, keyRef: id, store } },
  );
}

/** The whole store (a file) cannot be read or is not a key store. */
export function corruptStore(store: string, problem: string, cause?: unknown): ProviderError {
  return new ProviderError(
    "ENVELOPE_BAD_KEY",
    `hierarchical: key store ${store} is unusable (${problem}). ${RESTORE}`,
    {
      cause,
      details: { provider: PROVIDER_ID, store },
    },
  );
}

/** A store backend (database, file system) failed for a reason other than corruption. */
export function storeUnavailable(store: string, operation: string, cause: unknown): ProviderError {
  return new ProviderError(
    "ENVELOPE_KMS_UNAVAILABLE",
    `hierarchical: key store ${store} failed during ${operation}. Check that it is reachable and writable; nothing was written with an unsaved key.`,
    { cause, details: { provider: PROVIDER_ID, store, operation } },
  );
}
