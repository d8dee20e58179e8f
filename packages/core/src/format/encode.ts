// Every value is written in format v1 (docs/FORMAT.md §2). A v2 adds `v2/encode.ts` and
// the choice of version here; until then the v1 encoder is the encoder.
export { encodeEnvelope, encodeEnvelopeWith } from "./v1/encode.js";
