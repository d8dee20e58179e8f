import type { KeyVaultKey } from "@azure/keyvault-keys";
import { EnvelopeError } from "@envelope/core";

const RETRY_STALE_MS = 30_000;
const TRANSIENT = new Set([
  "ENVELOPE_KMS_THROTTLED",
  "ENVELOPE_KMS_UNAVAILABLE",
  "ENVELOPE_KMS_TIMEOUT",
]);

/**
 * The key that wraps new data keys (its latest version, or the pinned one), fetched from
 * Key Vault and cached for `refreshMs` so a rotation is picked up without a restart. One
 * fetch at a time; while Key Vault is throttling or unreachable the last good key keeps
 * serving (wrapping under a slightly older version is safe: it still unwraps).
 */
export class CurrentKey {
  #key: KeyVaultKey | undefined;
  #fetchedAt = 0;
  #flight: Promise<KeyVaultKey> | undefined;

  constructor(
    private readonly fetch: () => Promise<KeyVaultKey>,
    private readonly refreshMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The cached key, if any (no network). */
  peek(): KeyVaultKey | undefined {
    return this.#key;
  }

  /** The key, fetched when missing or older than `refreshMs`. */
  async get(): Promise<KeyVaultKey> {
    if (this.#key && this.clock() - this.#fetchedAt < this.refreshMs) return this.#key;
    return this.refresh();
  }

  /**
   * Fetches now and fails if the fetch fails: for an explicit refresh (after a rotation,
   * before a rewrap run), where keeping the old version silently would make the caller
   * believe new wraps and rewraps target the new one.
   */
  async reload(): Promise<KeyVaultKey> {
    const key = await this.fetch();
    this.#key = key;
    this.#fetchedAt = this.clock();
    return key;
  }

  /** Fetches now (joining a fetch already in flight); keeps the last good key on a transient failure. */
  refresh(): Promise<KeyVaultKey> {
    this.#flight ??= this.fetch()
      .then((key) => {
        this.#key = key;
        this.#fetchedAt = this.clock();
        return key;
      })
      .catch((error: unknown) => {
        if (this.#key && EnvelopeError.isInstance(error) && TRANSIENT.has(error.code)) {
          // Try again in at most 30 s rather than on every wrap while the vault is struggling.
          this.#fetchedAt =
            this.clock() - this.refreshMs + Math.min(this.refreshMs, RETRY_STALE_MS);
          return this.#key;
        }
        throw error;
      })
      .finally(() => {
        this.#flight = undefined;
      });
    return this.#flight;
  }
}
