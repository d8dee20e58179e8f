import { ConfigError, ProviderError } from "@envelope/core";
import type { VaultClient, VaultRequestOptions } from "./client.js";
import { describeFailure } from "./errors.js";
import { PROVIDER_ID } from "./key-ref.js";

/** How the provider authenticates to Vault. */
export type VaultAuth =
  | {
      /** A Vault token (VAULT_TOKEN). Renewed with renew-self before it expires, if renewable. */
      token: string;
      /** Look the token up and renew it before expiry. Default true. */
      renew?: boolean;
    }
  | {
      approle: {
        roleId: string;
        secretId: string;
        /** Auth mount path. Default `approle`. */
        mount?: string;
      };
    };

interface Lease {
  token: string;
  /** ms since epoch; 0 = does not expire (or unknown). */
  expiresAt: number;
  /** Lease length in ms as last granted, to decide when to renew. */
  durationMs: number;
  renewable: boolean;
}

/**
 * Supplies a valid token for each request. Renewal is lazy and single-flight: when less
 * than a third of the lease is left, the next request first renews it (renew-self), or
 * logs in again with AppRole when the token is not renewable or renewal failed or was
 * capped by the max TTL. No background timers: an idle process keeps nothing running.
 */
export class TokenSource {
  readonly #auth: VaultAuth | undefined;
  readonly #client: VaultClient;
  readonly #namespace: string | undefined;
  #lease: Lease | undefined;
  #pending: Promise<Lease> | undefined;
  readonly #now: () => number;
  readonly #keyLabel: string | undefined;
  /** ms since epoch before which a failed renewal / re-login is not tried again. */
  #retryAt = 0;

  constructor(
    auth: VaultAuth | undefined,
    client: VaultClient,
    namespace: string | undefined,
    now: () => number = Date.now,
    /** The key this token serves (`<mount>/keys/<name>`), named in lookup failures. */
    keyLabel?: string,
  ) {
    if (auth !== undefined) checkAuth(auth);
    this.#auth = auth;
    this.#client = client;
    this.#namespace = namespace;
    this.#now = now;
    this.#keyLabel = keyLabel;
  }

  /** True when a 403 may be cured by logging in again. */
  get canRelogin(): boolean {
    return this.#auth !== undefined && "approle" in this.#auth;
  }

  /** Headers for one request: the token (unless an injected client carries its own) and the namespace. */
  async headers(timeout: number): Promise<Record<string, string>> {
    const headers = this.#baseHeaders();
    if (!this.#auth) return headers;
    const lease = await this.#current(timeout);
    headers["X-Vault-Token"] = lease.token;
    return headers;
  }

  /** Drops the current token so the next request logs in again (after a 403 with AppRole). */
  invalidate(token: string | undefined): void {
    if (this.#lease && this.#lease.token === token) this.#lease = undefined;
  }

  /** The token in use, if any (for invalidate). */
  get token(): string | undefined {
    return this.#lease?.token;
  }

  #baseHeaders(): Record<string, string> {
    // X-Vault-Request: true on every request, as Vault's own Go client and CLI send it: a
    // Vault Agent or Vault Proxy listener with require_request_header (SSRF protection)
    // refuses requests without it (412 "missing 'X-Vault-Request' header").
    const headers: Record<string, string> = { "X-Vault-Request": "true" };
    if (this.#namespace) headers["X-Vault-Namespace"] = this.#namespace;
    return headers;
  }

  async #current(timeout: number): Promise<Lease> {
    const lease = this.#lease;
    if (lease && !this.#needsRefresh(lease)) return lease;
    this.#pending ??= this.#refresh(lease, timeout).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  #needsRefresh(lease: Lease): boolean {
    if (lease.expiresAt === 0) return false;
    const now = this.#now();
    // After a failed renewal or re-login the current token serves on, until it expires or
    // the back-off has passed: not one more Vault call per request while Vault struggles.
    if (now < this.#retryAt && lease.expiresAt > now) return false;
    return lease.expiresAt - now < lease.durationMs / 3;
  }

  async #refresh(previous: Lease | undefined, timeout: number): Promise<Lease> {
    const auth = this.#auth!;
    const now = this.#now();
    // While the current token is still valid, renewing it (or logging in again) must neither
    // fail nor stall the request it rides on: it gets half the attempt's time, and if it
    // fails the current token is used on and the next try waits a quarter of what is left.
    const valid = previous !== undefined && (previous.expiresAt === 0 || previous.expiresAt > now);
    const budget = valid ? Math.max(1, Math.floor(timeout / 2)) : timeout;
    let kept = false;
    const keep = (lease: Lease): Lease => {
      kept = true;
      this.#retryAt = this.#now() + Math.max(1000, (lease.expiresAt - this.#now()) / 4);
      return lease;
    };
    let lease: Lease;
    if ("token" in auth) {
      if (!previous) {
        lease =
          auth.renew === false
            ? { token: auth.token, expiresAt: 0, durationMs: 0, renewable: false }
            : await this.#lookup(auth.token, timeout);
      } else if (previous.renewable) {
        // A failed renewal keeps the old lease (still valid until it expires).
        lease = await this.#renew(previous, budget).catch(() => keep(previous));
      } else {
        // Not renewable: use it until Vault refuses it; a 403 then says what to do.
        lease = { ...previous, expiresAt: 0 };
      }
    } else {
      const renewed = previous?.renewable
        ? await this.#renew(previous, budget).catch(() => undefined)
        : undefined;
      if (previous && renewed && renewed.durationMs * 2 >= previous.durationMs) {
        lease = renewed;
      } else {
        // Not renewable, renewal refused, or capped by the token's max TTL (bought less than
        // half a lease): log in again; while the token in hand is valid, a failed login keeps it.
        const inHand = renewed ?? previous;
        lease =
          valid && inHand
            ? await this.#login(auth.approle, budget).catch(() => keep(inHand))
            : await this.#login(auth.approle, timeout);
      }
    }
    if (!kept) this.#retryAt = 0;
    this.#lease = lease;
    return lease;
  }

  async #lookup(token: string, timeout: number): Promise<Lease> {
    let body: unknown;
    try {
      body = await this.#client.read("auth/token/lookup-self", this.#options(token, timeout));
    } catch (error) {
      throw lookupFailure(error, this.#keyLabel);
    }
    const data = (body as { data?: { ttl?: unknown; renewable?: unknown } } | undefined)?.data;
    const ttl = typeof data?.ttl === "number" ? data.ttl : 0;
    return this.#lease_(token, ttl, data?.renewable === true);
  }

  async #renew(previous: Lease, timeout: number): Promise<Lease> {
    const body = await this.#client.write(
      "auth/token/renew-self",
      {},
      this.#options(previous.token, timeout),
    );
    return this.#fromAuth(body, previous.token);
  }

  async #login(
    approle: { roleId: string; secretId: string; mount?: string },
    timeout: number,
  ): Promise<Lease> {
    const mount = (approle.mount ?? "approle").replace(/^\/+|\/+$/g, "");
    let body: unknown;
    try {
      body = await this.#client.write(
        `auth/${mount}/login`,
        { role_id: approle.roleId, secret_id: approle.secretId },
        { headers: this.#baseHeaders(), timeout },
      );
    } catch (error) {
      const failure = describeFailure(error);
      // Vault answers a wrong role_id / secret_id with 400; it is a credentials problem, not a retryable one.
      if (failure.status === 400) {
        throw new ProviderError(
          "ENVELOPE_KMS_ACCESS_DENIED",
          `${PROVIDER_ID}: AppRole login at auth/${mount}/login failed (${failure.message}). Check the role_id and secret_id (VAULT_ROLE_ID / VAULT_SECRET_ID); secret IDs can expire or be limited to a number of uses.`,
          {
            cause: new Error(`Vault 400: ${failure.message}`),
            details: { provider: PROVIDER_ID, operation: "login" },
          },
        );
      }
      throw error;
    }
    return this.#fromAuth(body, undefined);
  }

  #fromAuth(body: unknown, fallbackToken: string | undefined): Lease {
    const auth = (
      body as
        | { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } }
        | undefined
    )?.auth;
    const token =
      typeof auth?.client_token === "string" && auth.client_token
        ? auth.client_token
        : fallbackToken;
    if (!token) {
      throw new ProviderError(
        "ENVELOPE_KMS_ERROR",
        `${PROVIDER_ID}: Vault's login answer has no auth.client_token. Check the auth mount path.`,
        {
          details: { provider: PROVIDER_ID },
        },
      );
    }
    const ttl = typeof auth?.lease_duration === "number" ? auth.lease_duration : 0;
    return this.#lease_(token, ttl, auth?.renewable === true);
  }

  #lease_(token: string, ttlSeconds: number, renewable: boolean): Lease {
    const durationMs = ttlSeconds * 1000;
    return {
      token,
      expiresAt: ttlSeconds > 0 ? this.#now() + durationMs : 0,
      durationMs,
      renewable,
    };
  }

  #options(token: string, timeout: number): VaultRequestOptions {
    return { headers: { ...this.#baseHeaders(), "X-Vault-Token": token }, timeout };
  }

  toJSON(): object {
    return {
      auth: this.#auth === undefined ? "client" : "token" in this.#auth ? "token" : "approle",
    };
  }
}

function checkAuth(auth: VaultAuth): void {
  const ok =
    typeof auth === "object" &&
    auth !== null &&
    (("token" in auth && typeof auth.token === "string" && auth.token.length > 0) ||
      ("approle" in auth &&
        typeof auth.approle?.roleId === "string" &&
        auth.approle.roleId.length > 0 &&
        typeof auth.approle.secretId === "string" &&
        auth.approle.secretId.length > 0));
  if (!ok) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${PROVIDER_ID}: auth must be { token } or { approle: { roleId, secretId, mount? } } with non-empty strings (VAULT_TOKEN, or VAULT_ROLE_ID + VAULT_SECRET_ID).`,
      { details: { field: "auth" } },
    );
  }
}

const NO_LOOKUP =
  "To use the token without looking it up (no renewal), set renew=false: ?renew=false in the URI, ENVELOPE_VAULT_TOKEN_RENEW=false, or auth: { token, renew: false }.";

/**
 * A failed token lookup (GET auth/token/lookup-self), reported as what it is rather than
 * as a transit failure: a proxy that forwards only transit paths answers it 404, which
 * would otherwise read "no such key or transit mount". Transient failures (no answer, 429,
 * 5xx) are left as they are, for the retry loop to classify and retry.
 */
function lookupFailure(error: unknown, keyLabel: string | undefined): unknown {
  const failure = describeFailure(error);
  const status = failure.status;
  if (status === undefined || status === 429 || status >= 500) return error;
  const denied = status === 401 || status === 403;
  const forKey = keyLabel ? ` for key ${keyLabel}` : "";
  return new ProviderError(
    denied ? "ENVELOPE_KMS_ACCESS_DENIED" : "ENVELOPE_KMS_ERROR",
    denied
      ? `${PROVIDER_ID}: the token lookup (auth/token/lookup-self)${forKey} was refused (${status}: ${failure.message}). The token is invalid, expired or revoked, or its policy lacks read on auth/token/lookup-self. ${NO_LOOKUP}`
      : `${PROVIDER_ID}: the token lookup (auth/token/lookup-self)${forKey} failed with ${status} (${failure.message}), so the token's TTL is unknown. If a proxy in front of Vault forwards only transit paths, that is why. ${NO_LOOKUP}`,
    {
      cause: new Error(`Vault ${status}: ${failure.message}`),
      details: {
        provider: PROVIDER_ID,
        operation: "token lookup",
        httpStatus: status,
        ...(keyLabel ? { keyRef: keyLabel } : {}),
      },
    },
  );
}
