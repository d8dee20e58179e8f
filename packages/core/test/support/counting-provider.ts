import { hkdfSync, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import {
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyProvider,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";
// core's own AES-KW: node:crypto's id-aes256-wrap is missing on Bun and Deno.
import { aesKeyUnwrap, aesKeyWrap } from "../../src/crypto/key-wrap.js";

export interface CountingProviderOptions {
  /** Provider id written into entries. Default "counting". */
  id?: string;
  /** Key reference. Default a random "ck-…" name. */
  keyRef?: string;
  /** The 32-byte master key. Default random. */
  masterKey?: Uint8Array;
  /** Artificial latency added to every call, in ms. Default 0. */
  delayMs?: number;
  /** Offer generateDataKey (one "KMS call" that returns a key and its wrapped copy). */
  generateDataKey?: boolean;
  /** Data keys handed out by generateDataKey. Default 32 random bytes. */
  nextDataKey?: () => Uint8Array;
  /**
   * Implement kmsContextKey with this function and bind its result to the wrapped key the
   * way AWS KMS binds EncryptionContext: unwrapping under another value fails.
   */
  kmsContext?: (context: EncryptionContext) => string;
  /** Offer a native rewrap (the data key never leaves the "KMS"). */
  nativeRewrap?: boolean;
  /**
   * Handle every entry of this provider id, whatever its key ref, like a KMS that reaches
   * all versions of a key. The fake has one master key, so only the label differs.
   */
  anyKeyRef?: boolean;
}

export interface CallCounts {
  wrap: number;
  unwrap: number;
  generateDataKey: number;
  rewrap: number;
}

/** A KeyProvider backed by AES-KW that counts its calls, for cache and contract tests. */
export interface CountingProvider extends KeyProvider {
  readonly calls: CallCounts;
  /** Every buffer unwrap returned, in order (to check that the core zeroes them). */
  readonly unwrapped: Uint8Array[];
  /** Every data key generateDataKey returned, in order. */
  readonly generated: Uint8Array[];
  /** The kmsContextKey values unwrap was called with, in order. */
  readonly unwrapContexts: string[];
  /** Sets every counter back to zero and forgets recorded buffers. */
  reset(): void;
}

/**
 * A small KMS stand-in: AES Key Wrap under a master key, with optional latency,
 * generateDataKey, KMS-level context binding and native rewrap. Counts every call.
 *
 * @example
 * const kms = countingProvider({ delayMs: 5 });
 * const envelope = new Envelope({ encrypt: kms });
 */
export function countingProvider(options: CountingProviderOptions = {}): CountingProvider {
  const id = options.id ?? "counting";
  const keyRef = options.keyRef ?? `ck-${randomBytes(4).toString("hex")}`;
  const master = Buffer.from(options.masterKey ?? randomBytes(32));
  const calls: CallCounts = { wrap: 0, unwrap: 0, generateDataKey: 0, rewrap: 0 };
  const unwrapped: Uint8Array[] = [];
  const generated: Uint8Array[] = [];
  const unwrapContexts: string[] = [];
  const delay = () =>
    options.delayMs
      ? new Promise((resolve) => setTimeout(resolve, options.delayMs))
      : Promise.resolve();
  const bound = (context: EncryptionContext) => options.kmsContext?.(context) ?? "";
  // The KMS context is bound by deriving the key-wrapping key from it.
  const kek = (context: EncryptionContext) =>
    Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), `kms-context:${bound(context)}`, 32));
  const wrapUnder = (dataKey: Uint8Array, context: EncryptionContext): WrappedKey => {
    return { providerId: id, keyRef, wrapped: aesKeyWrap(kek(context), dataKey) };
  };
  const unwrapRaw = (entry: WrappedKey, context: EncryptionContext): Buffer => {
    try {
      return aesKeyUnwrap(kek(context), entry.wrapped);
    } catch (cause) {
      throw new ProviderError(
        "ENVELOPE_UNWRAP_FAILED",
        `${id}: cannot unwrap under ${entry.keyRef}.`,
        {
          cause,
          details: { provider: id, keyRef: entry.keyRef },
        },
      );
    }
  };

  const provider: CountingProvider & { toJSON(): object; [inspect.custom](): string } = {
    id,
    keyRef,
    calls,
    unwrapped,
    generated,
    unwrapContexts,
    handles: (entry) =>
      entry.providerId === id && (entry.keyRef === keyRef || (options.anyKeyRef ?? false)),
    async wrap(dataKey, request) {
      calls.wrap++;
      await delay();
      return wrapUnder(dataKey, request.context);
    },
    async unwrap(entry, request) {
      calls.unwrap++;
      unwrapContexts.push(bound(request.context));
      await delay();
      const key = unwrapRaw(entry, request.context);
      unwrapped.push(key);
      return key;
    },
    reset() {
      calls.wrap = calls.unwrap = calls.generateDataKey = calls.rewrap = 0;
      unwrapped.length = generated.length = unwrapContexts.length = 0;
    },
    toJSON: () => ({ provider: id, keyRef }),
    [inspect.custom]: () => `CountingProvider { id: '${id}', keyRef: '${keyRef}' }`,
  };
  if (options.generateDataKey) {
    provider.generateDataKey = async (request): Promise<GeneratedDataKey> => {
      calls.generateDataKey++;
      await delay();
      const dataKey = Buffer.from(options.nextDataKey?.() ?? randomBytes(32));
      generated.push(dataKey);
      return { dataKey, entry: wrapUnder(dataKey, request.context) };
    };
  }
  if (options.kmsContext) provider.kmsContextKey = (context) => bound(context);
  if (options.nativeRewrap) {
    provider.rewrap = async (entry, request) => {
      calls.rewrap++;
      await delay();
      // A real KMS decrypts with the entry's key version and encrypts with the current one.
      const key = unwrapRaw(entry, request.context);
      try {
        return wrapUnder(key, request.context);
      } finally {
        key.fill(0);
      }
    };
  }
  return provider;
}

/** True when every byte is zero. */
export function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
