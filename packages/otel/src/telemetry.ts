import {
  type AuditHook,
  ConfigError,
  cachesUnwrap,
  type Envelope,
  type EnvelopeConfig,
  type EnvelopeOptions,
  type KeyProvider,
  type KeySpec,
  resolveKey,
} from "@envelope/core";
import { type MeterProvider, metrics, type TracerProvider, trace } from "@opentelemetry/api";
import { auditRecorder, chainAudit } from "./audit-metrics.js";
import { observeCache } from "./cache-metrics.js";
import { createInstruments } from "./instruments.js";
import { KeyRefLabels } from "./labels.js";
import { ATTR, SCOPE_NAME, SCOPE_VERSION } from "./names.js";
import { type ProviderTelemetry, wrapProvider } from "./provider.js";

export interface TelemetryOptions {
  /** Where metrics go. Default: the global one (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where spans go. Default: the global one (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /**
   * Most distinct key references used as metric labels; later ones are labelled `_other`.
   * Key references come from stored values, so without a bound whoever can write to the
   * database could create time series at will. Default 100.
   */
  maxKeyRefs?: number;
}

/** Metrics and traces for Envelope clients; see {@link envelopeTelemetry}. */
export interface EnvelopeTelemetry {
  /** The audit hook that records `envelope.operations` and `envelope.operation.duration`. */
  readonly onAudit: AuditHook;
  /**
   * A provider with a span and KMS metrics around each wrap / unwrap / generateDataKey /
   * rewrap call. The same provider object always gives the same instrumented object.
   */
  instrumentProvider(provider: KeyProvider): KeyProvider;
  /**
   * Options for `new Envelope(...)`: providers instrumented (except those whose unwrap is
   * a local derivation, hierarchical mode: instrument its master instead) and the audit hook chained
   * after yours.
   */
  instrument(options: EnvelopeOptions): EnvelopeOptions;
  /**
   * A config for `createEnvelope` / `envelopeFromEnv`: key URIs and provider configs are
   * resolved here (with `env`), then instrumented as in `instrument`.
   */
  instrumentConfig(
    config: EnvelopeConfig,
    env?: Readonly<Record<string, string | undefined>>,
  ): Promise<EnvelopeConfig>;
  /**
   * Reports the client's `cacheStats()` (cache hits, misses, evictions, in-flight joins,
   * size, data-key reuses). Name each client with `client` when observing more than one.
   * Returns a function that stops reporting.
   */
  observe(envelope: Envelope, options?: { client?: string }): () => void;
}

/**
 * OpenTelemetry metrics and traces for Envelope: operation counts and latencies from the
 * audit hook, KMS spans and counts from wrapped providers, and cache counters from
 * `cacheStats()`. Nothing recorded is key material, plaintext or a context value.
 *
 * @example
 * const telemetry = envelopeTelemetry();
 * const envelope = await createEnvelope(
 *   await telemetry.instrumentConfig({ encrypt: "aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii" }),
 * );
 * telemetry.observe(envelope);
 */
export function envelopeTelemetry(options: TelemetryOptions = {}): EnvelopeTelemetry {
  const maxKeyRefs = options.maxKeyRefs ?? 100;
  if (!Number.isSafeInteger(maxKeyRefs) || maxKeyRefs < 1) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `maxKeyRefs must be a positive integer (e.g. 100); got ${String(maxKeyRefs)}.`,
      { details: { field: "maxKeyRefs" } },
    );
  }
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
    SCOPE_NAME,
    SCOPE_VERSION,
  );
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
    SCOPE_NAME,
    SCOPE_VERSION,
  );
  const keyRefs = new KeyRefLabels(maxKeyRefs);
  const instruments = createInstruments(meter);
  const providerTelemetry: ProviderTelemetry = { tracer, instruments, keyRefs };
  const onAudit = auditRecorder(instruments, keyRefs);
  // One wrapper per provider object: core compares providers by identity (the same key in
  // `encrypt` and `decrypt`, readiness roles).
  const wrappers = new WeakMap<KeyProvider, KeyProvider>();

  const instrumentProvider = (provider: KeyProvider): KeyProvider => {
    let wrapped = wrappers.get(provider);
    if (!wrapped) {
      wrapped = wrapProvider(provider, providerTelemetry);
      wrappers.set(provider, wrapped);
    }
    return wrapped;
  };
  // Hierarchical mode's unwrap is a local HMAC, not a KMS call: spans there would count
  // every record. Its master provider is where the KMS calls are. Core's own test for "an
  // unwrap worth caching" tells the two kinds apart.
  const forClient = (provider: KeyProvider) =>
    cachesUnwrap(provider) ? instrumentProvider(provider) : provider;

  // The configured keys' references always keep their labels, a decrypt-only (old) key's
  // too: it only unwraps, so no wrap of its own would ever trust it.
  const trustConfigured = (providers: readonly (KeyProvider | undefined)[]) => {
    for (const provider of providers) if (provider) keyRefs.trust(provider.keyRef);
  };

  const instrument = (given: EnvelopeOptions): EnvelopeOptions => {
    trustConfigured([
      ...(Array.isArray(given.encrypt) ? given.encrypt : [given.encrypt]),
      ...(given.decrypt ?? []),
    ] as (KeyProvider | undefined)[]);
    const encrypt = Array.isArray(given.encrypt)
      ? given.encrypt.map(forClient)
      : forClient(given.encrypt as KeyProvider);
    return {
      ...given,
      encrypt,
      ...(given.decrypt ? { decrypt: given.decrypt.map(forClient) } : {}),
      onAudit: chainAudit(given.onAudit, onAudit),
    };
  };

  const instrumentConfig = async (
    config: EnvelopeConfig,
    env: Readonly<Record<string, string | undefined>> = process.env,
  ): Promise<EnvelopeConfig> => {
    const specs = (value: KeySpec | readonly KeySpec[]) =>
      Array.isArray(value) ? (value as readonly KeySpec[]) : [value as KeySpec];
    // Field names as createEnvelope gives them, so a bad key is reported the same way.
    const [encrypt, decrypt] = await Promise.all([
      config.encrypt === undefined
        ? undefined
        : Promise.all(specs(config.encrypt).map((s, i) => resolveKey(s, `encrypt[${i}]`, env))),
      config.decrypt === undefined || !Array.isArray(config.decrypt)
        ? undefined
        : Promise.all(config.decrypt.map((s, i) => resolveKey(s, `decrypt[${i}]`, env))),
    ]);
    trustConfigured([...(encrypt ?? []), ...(decrypt ?? [])]);
    return {
      ...config,
      // createEnvelope reports a missing or malformed field itself.
      ...(encrypt ? { encrypt: encrypt.map(forClient) } : {}),
      ...(decrypt ? { decrypt: decrypt.map(forClient) } : {}),
      onAudit: chainAudit(config.onAudit, onAudit),
    };
  };

  const observe = (envelope: Envelope, observeOptions: { client?: string } = {}) =>
    observeCache(
      meter,
      envelope,
      observeOptions.client === undefined ? {} : { [ATTR.client]: observeOptions.client },
    );

  return { onAudit, instrumentProvider, instrument, instrumentConfig, observe };
}
