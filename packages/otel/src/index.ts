/**
 * @envelope/otel — OpenTelemetry metrics and traces for Envelope clients. Needs
 * `@opentelemetry/api` (a peer dependency); `@envelope/core` itself never imports it.
 */

export { OTHER_KEY_REF, UNTYPED_ERROR } from "./labels.js";
export { ATTR, METRICS, SCOPE_NAME, SCOPE_VERSION, SPANS } from "./names.js";
export { type EnvelopeTelemetry, envelopeTelemetry, type TelemetryOptions } from "./telemetry.js";
