/**
 * The secret-surface checks live in @envelope/core/testing (the provider conformance suite
 * uses them); re-exported here for the cross-package leak tests.
 */
export { findCanaries, surfaces } from "@envelope/core/testing";
