import { inspect } from "node:util";
import type { KeyProvider } from "@envelope/core";
import { type Attributes, SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";
import type { Instruments } from "./instruments.js";
import { errorCode, type KeyRefLabels, keyRefAttribute } from "./labels.js";
import { ATTR, type KmsOperation, SPANS } from "./names.js";

/** Marks a provider this package made, so it is never wrapped (and counted) twice. */
const INSTRUMENTED = Symbol.for("@envelope/otel.instrumented");

export interface ProviderTelemetry {
  readonly tracer: Tracer;
  readonly instruments: Instruments;
  readonly keyRefs: KeyRefLabels;
}

export function isInstrumented(provider: KeyProvider): boolean {
  return (provider as { [INSTRUMENTED]?: boolean })[INSTRUMENTED] === true;
}

/**
 * The same provider, with a CLIENT span, a call count, an error count and a duration for
 * each wrap / unwrap / generateDataKey / rewrap call. Arguments and results pass through
 * untouched and are never read: the data key, the wrapped bytes and the context stay out
 * of every attribute. Optional methods stay absent when the provider lacks them (core
 * decides on GenerateDataKey, native rewrap and local unwraps by their presence), and `keyRef` is read
 * through, so a key version re-read by `refresh()` shows at once.
 */
export function wrapProvider(provider: KeyProvider, telemetry: ProviderTelemetry): KeyProvider {
  if (isInstrumented(provider)) return provider;
  const call = <T>(
    operation: KmsOperation,
    keyRef: string,
    run: () => Promise<T>,
    source?: string,
  ) => traced(telemetry, provider, operation, keyRef, run, source);
  const wrapped: KeyProvider = {
    id: provider.id,
    get keyRef() {
      return provider.keyRef;
    },
    handles: (entry) => provider.handles(entry),
    wrap: (dataKey, request) =>
      call("wrap", provider.keyRef, () => provider.wrap(dataKey, request)),
    unwrap: (entry, request) => call("unwrap", entry.keyRef, () => provider.unwrap(entry, request)),
    ...(provider.generateDataKey
      ? {
          generateDataKey: (request) =>
            call("generate_data_key", provider.keyRef, () => provider.generateDataKey!(request)),
        }
      : {}),
    ...(provider.rewrap
      ? {
          rewrap: (entry, request) =>
            call("rewrap", provider.keyRef, () => provider.rewrap!(entry, request), entry.keyRef),
        }
      : {}),
    ...(provider.kmsContextKey
      ? { kmsContextKey: (context) => provider.kmsContextKey!(context) }
      : {}),
    ...(provider.refresh ? { refresh: () => provider.refresh!() } : {}),
    ...(provider.readinessTargets ? { readinessTargets: () => provider.readinessTargets!() } : {}),
    // A local derivation (hierarchical mode), not a KMS call: passed on untraced, so a
    // provider instrumented by hand keeps its promise-free warm path.
    ...(provider.unwrapNow
      ? { unwrapNow: (entry, request) => provider.unwrapNow!(entry, request) }
      : {}),
    ...(provider.skipUnwrapCache !== undefined
      ? { skipUnwrapCache: provider.skipUnwrapCache }
      : {}),
  };
  // Prints as the ids only, like the providers themselves (nothing of the original is copied).
  const describe = () => ({ instrumented: true, provider: provider.id, keyRef: provider.keyRef });
  Object.defineProperties(wrapped, {
    [INSTRUMENTED]: { value: true },
    toJSON: { value: describe },
    [inspect.custom]: { value: () => `Instrumented ${inspect(describe())}` },
  });
  return wrapped;
}

async function traced<T>(
  { tracer, instruments, keyRefs }: ProviderTelemetry,
  provider: KeyProvider,
  operation: KmsOperation,
  keyRef: string,
  run: () => Promise<T>,
  sourceKeyRef?: string,
): Promise<T> {
  const spanAttributes: Attributes = {
    [ATTR.provider]: provider.id,
    [ATTR.keyRef]: keyRefAttribute(keyRef),
    [ATTR.kmsOperation]: operation,
  };
  if (sourceKeyRef !== undefined) spanAttributes[ATTR.sourceKeyRef] = keyRefAttribute(sourceKeyRef);
  // Every call but an unwrap names the provider's own key (an unwrap, a stored entry's).
  if (operation !== "unwrap") keyRefs.trust(keyRef);
  const metric: Attributes = {
    [ATTR.provider]: provider.id,
    [ATTR.keyRef]: keyRefs.label(keyRef),
    [ATTR.kmsOperation]: operation,
  };
  // Active, so spans of the vendor SDK's own HTTP calls nest under this one.
  return tracer.startActiveSpan(
    SPANS[operation],
    { kind: SpanKind.CLIENT, attributes: spanAttributes },
    async (span) => {
      const started = performance.now();
      try {
        const result = await run();
        record(instruments, metric, started, "success");
        // The entry this provider just wrapped names its own key (an aliased KMS key: the
        // ARN behind the alias): trust it, so reads of the service's values keep a label.
        if (operation !== "unwrap") keyRefs.trust(wrappedKeyRef(result));
        return result;
      } catch (error) {
        // The code only: no recordException, whose message and stack could quote a vendor
        // response (request ids, tokens) or a key file path.
        const code = errorCode(error);
        span.setAttribute(ATTR.errorType, code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        record(instruments, metric, started, "failure", code);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

function record(
  instruments: Instruments,
  base: Attributes,
  started: number,
  outcome: "success" | "failure",
  code?: string,
): void {
  const attributes: Attributes = { ...base, [ATTR.outcome]: outcome };
  if (code !== undefined) {
    attributes[ATTR.errorType] = code;
    instruments.kmsErrors.add(1, { ...base, [ATTR.errorType]: code });
  }
  instruments.kmsCalls.add(1, attributes);
  instruments.kmsDuration.record((performance.now() - started) / 1000, attributes);
}

/** The key reference of the entry a wrap, rewrap or generateDataKey returned ("" if none). */
function wrappedKeyRef(result: unknown): string {
  const entry = (result as { entry?: unknown } | undefined)?.entry ?? result;
  const keyRef = (entry as { keyRef?: unknown } | undefined)?.keyRef;
  return typeof keyRef === "string" ? keyRef : "";
}
