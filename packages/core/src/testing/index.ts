/**
 * @envelope/core/testing — the provider conformance suite and the helpers its checks use.
 * For tests only: it takes your runner's `describe` / `it` as parameters, so neither core
 * nor this subpath depends on a test framework.
 */

export {
  type ConformanceSubject,
  type ConformanceTestApi,
  FAULT_CODES,
  type FaultInjector,
  type FaultKind,
  runProviderConformance,
} from "./conformance.js";
export { failure } from "./failure.js";
export { recordingProvider } from "./recording.js";
export { findCanaries, secretForms, surfaces } from "./surfaces.js";
