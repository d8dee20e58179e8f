// The legacy decoders live in @envelope/legacy; re-exported here so existing imports of
// @envelope/batch-rewrap keep working.
export {
  type AnyLegacyDecoder,
  type AsyncLegacyDecoder,
  type LegacyDecoder,
  type LegacyFormat,
  type LegacyKeySource,
  type LegacyOptions,
  legacyDecoder,
  loadLegacyKey,
} from "@envelope/legacy";
