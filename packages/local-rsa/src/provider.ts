import { type KeyObject, privateDecrypt, publicEncrypt } from "node:crypto";
import { inspect } from "node:util";
import {
  ConfigError,
  DATA_KEY_LENGTH,
  type KeyProvider,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";
import { strictKeyFiles } from "@envelope/core/internal";
import { OAEP, PROVIDER_ID } from "./constants.js";
import { fingerprint } from "./key-ref.js";
import {
  PoolUnwrapError,
  RsaPool,
  type RsaThreadStats,
  type RsaThreads,
  THREADS_ENV,
  threadCount,
} from "./pool.js";
import { loadSources, type RsaKeySource } from "./sources.js";

export interface LocalRsaOptions {
  /**
   * One key source, or several: list the newest first. The first key wraps new data keys;
   * every key unwraps (rotation). A directory source contributes its keys newest file first.
   */
  keys: RsaKeySource | readonly RsaKeySource[];
  /** Environment to read `env` / `passphraseEnv` names from. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Refuse (ConfigError `ENVELOPE_BAD_KEY`) a private key file or passphrase file that group
   * or others can access, instead of warning once (process warning with code
   * `ENVELOPE_KEY_FILE_PERMISSIONS`). Default: `ENVELOPE_STRICT_KEY_FILES=1` in `env`, else
   * false. Not checked on Windows.
   */
  strictKeyFiles?: boolean;
  /**
   * Run RSA private-key operations (unwraps) on a pool of worker threads, so one process
   * decrypts on every core: `"auto"` (one thread per core), a count, or `false` (the
   * calling thread). Concurrency comes from callers issuing many unwraps at once
   * (`Promise.all`, the batch engine). Threads start on the first unwrap, never keep the
   * process alive when idle, and stop on `close()`. Wraps (public-key operations, ~20× cheaper) stay
   * on the calling thread. Default: `ENVELOPE_LOCAL_RSA_THREADS` in `env`, else `false`.
   */
  threads?: RsaThreads;
}

/** Non-secret facts about one loaded key. */
export interface RsaKeyInfo {
  readonly keyRef: string;
  /** `private`: wraps and unwraps. `public`: wraps only (encrypt-only mode). */
  readonly kind: "private" | "public";
  readonly modulusLength: number;
}

/** A local-rsa KeyProvider; `keys` lists what it holds, by key reference only. */
export interface LocalRsaProvider extends KeyProvider {
  readonly keys: readonly RsaKeyInfo[];
  /** Worker threads this provider may use for unwraps; 0 = on the calling thread. */
  readonly threads: number;
  /** Per worker thread started so far: its thread id and how many unwraps it ran. */
  threadStats(): RsaThreadStats[];
  /**
   * Stops the worker threads (pending unwraps fail with ENVELOPE_KMS_UNAVAILABLE). Later
   * unwraps run on the calling thread. Not needed for the process to exit. Idempotent.
   */
  close(): Promise<void>;
}

interface HeldKey {
  readonly publicKey: KeyObject;
  privateKey: KeyObject | undefined;
}

/**
 * Local RSA master keys: RSA-OAEP with SHA-256 (MGF1-SHA-256, no label) wraps each data
 * key; nothing leaves the process. Keys come from PEM text, files, a directory (e.g. a
 * Docker/Kubernetes secret mount) or env vars, and are parsed once, here. The key
 * reference is the public key's fingerprint (see `rsaKeyRef`).
 *
 * Several keys: the first wraps, all unwrap. A key given only as a public key wraps but
 * cannot unwrap (encrypt-only mode: decrypt fails with ENVELOPE_ENCRYPT_ONLY).
 *
 * @example
 * const provider = localRsaProvider({
 *   keys: [{ path: "/run/secrets/enc_key_2025.pem" }, { path: "/run/secrets/enc_key_2024.pem" }],
 * });
 * const envelope = new Envelope({ encrypt: provider });
 */
export function localRsaProvider(options: LocalRsaOptions): LocalRsaProvider {
  if (
    typeof options !== "object" ||
    options === null ||
    options.keys === undefined ||
    options.keys === null
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'local-rsa: give keys, e.g. { keys: { path: "/run/secrets/enc_key.pem" } }.',
      {
        details: { field: "keys" },
      },
    );
  }
  const sources: readonly RsaKeySource[] = Array.isArray(options.keys)
    ? options.keys
    : [options.keys as RsaKeySource];
  if (sources.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "local-rsa: keys is empty; give at least one key source (newest first).",
      {
        details: { field: "keys" },
      },
    );
  }
  // Map order = first appearance, so the first key given stays the wrapping key even when
  // a later source supplies its private half.
  const held = new Map<string, HeldKey>();
  const env = options.env ?? process.env;
  for (const key of loadSources(sources, env, strictKeyFiles(options.strictKeyFiles, env))) {
    const ref = fingerprint(key.publicKey);
    const existing = held.get(ref);
    if (!existing) held.set(ref, { publicKey: key.publicKey, privateKey: key.privateKey });
    else existing.privateKey ??= key.privateKey;
  }
  const [keyRef, current] = [...held.entries()][0]!;
  const keys: readonly RsaKeyInfo[] = Object.freeze(
    [...held.entries()].map(([ref, k]) =>
      Object.freeze({
        keyRef: ref,
        kind: k.privateKey ? ("private" as const) : ("public" as const),
        modulusLength: k.publicKey.asymmetricKeyDetails?.modulusLength ?? 0,
      }),
    ),
  );
  const size = threadCount(
    options.threads !== undefined ? options.threads : env[THREADS_ENV],
    options.threads !== undefined ? "threads" : THREADS_ENV,
  );
  const pool = size > 0 ? new RsaPool(size) : undefined;
  const describe = () => ({
    provider: PROVIDER_ID,
    keyRef,
    keys: keys.map((k) => ({ keyRef: k.keyRef, kind: k.kind })),
  });

  const provider: LocalRsaProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: PROVIDER_ID,
    keyRef,
    keys,
    handles: (entry) => entry.providerId === PROVIDER_ID && held.has(entry.keyRef),
    async wrap(dataKey): Promise<WrappedKey> {
      const wrapped = publicEncrypt({ key: current.publicKey, ...OAEP }, dataKey);
      return { providerId: PROVIDER_ID, keyRef, wrapped };
    },
    async unwrap(entry): Promise<Uint8Array> {
      const key = held.get(entry.keyRef);
      const details = { provider: PROVIDER_ID, keyRef: entry.keyRef };
      if (!key) {
        throw new ProviderError(
          "ENVELOPE_KEY_NOT_FOUND",
          `local-rsa key ${entry.keyRef} is not configured. Add its private key PEM to keys (old keys stay listed after the newest).`,
          { details },
        );
      }
      if (!key.privateKey) {
        throw new ConfigError(
          "ENVELOPE_ENCRYPT_ONLY",
          `local-rsa key ${entry.keyRef}: this service holds only the public key; decrypt where the private key is configured.`,
          { details },
        );
      }
      let dataKey: Buffer;
      if (pool && !pool.closed) {
        try {
          dataKey = await pool.unwrap(key.privateKey, entry.wrapped);
        } catch (cause) {
          throw poolFailed(entry.keyRef, cause);
        }
      } else {
        try {
          dataKey = privateDecrypt({ key: key.privateKey, ...OAEP }, entry.wrapped);
        } catch (cause) {
          throw unwrapFailed(entry.keyRef, cause);
        }
      }
      if (dataKey.length !== DATA_KEY_LENGTH) {
        dataKey.fill(0);
        throw unwrapFailed(entry.keyRef);
      }
      return dataKey;
    },
    threads: size,
    threadStats: () => pool?.stats() ?? [],
    close: async () => {
      await pool?.close();
    },
    toJSON: describe,
    [inspect.custom]: () =>
      `LocalRsaProvider { keyRef: '${keyRef}', keys: [${keys.map((k) => `'${k.keyRef}' (${k.kind})`).join(", ")}] }`,
  };
  return provider;
}

function unwrapFailed(keyRef: string, cause?: unknown): ProviderError {
  return new ProviderError(
    "ENVELOPE_UNWRAP_FAILED",
    `local-rsa could not unwrap the data key under key ${keyRef}: wrong key or corrupted entry. Check that this is the key the value was sealed with and that the stored value is intact.`,
    { details: { provider: PROVIDER_ID, keyRef }, ...(cause === undefined ? {} : { cause }) },
  );
}

function poolFailed(keyRef: string, cause: unknown): ProviderError {
  if (cause instanceof PoolUnwrapError && cause.reason === "decrypt") {
    const rebuilt = new Error(cause.message);
    if (cause.opensslCode) (rebuilt as Error & { code?: string }).code = cause.opensslCode;
    return unwrapFailed(keyRef, rebuilt);
  }
  return new ProviderError(
    "ENVELOPE_KMS_UNAVAILABLE",
    `local-rsa: the worker thread unwrapping a data key under key ${keyRef} stopped (provider closed, or the thread failed). Retry; after close() unwraps run on the calling thread.`,
    { details: { provider: PROVIDER_ID, keyRef } },
  );
}
