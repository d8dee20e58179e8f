import type { Auditor } from "../audit.js";
import { openAndZero } from "../crypto/seal.js";
import { DATA_KEY_LENGTH } from "../format/constants.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { unwrapsLocally } from "../providers/capabilities.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";
import { committedMessageKey, UNWRAP_EXTRA } from "./entry-key.js";
import type { OpenedBy } from "./warm-path.js";

/**
 * The cold path without a promise: the first candidate's provider derives the data key at
 * once (`LocalUnwrap`, hierarchical mode with its intermediate key cached), the key
 * commitment is checked and the body opened. Undefined when the provider cannot, or the
 * key it gives fails a check: the caller then takes the full path, which reports the
 * failure. A body that fails its tag throws here, as it would there.
 */
export function openNow(
  audit: Auditor,
  pairs: readonly (readonly [WrappedKey, KeyProvider])[],
  parts: EnvelopeParts,
  request: KeyRequest,
  aad: Uint8Array,
  report: (used: OpenedBy) => void,
): Buffer | undefined {
  const first = pairs[0];
  if (!first || !unwrapsLocally(first[1])) return undefined;
  const [entry, provider] = first;
  const started = audit.start();
  let dataKey: Uint8Array | undefined;
  try {
    dataKey = provider.unwrapNow(entry, request);
  } catch {
    return undefined;
  }
  if (!(dataKey instanceof Uint8Array)) return undefined;
  if (dataKey.length !== DATA_KEY_LENGTH) {
    dataKey.fill(0);
    return undefined;
  }
  const encryptionKey = committedMessageKey(dataKey, parts);
  dataKey.fill(0);
  if (!encryptionKey) return undefined;
  audit.event("unwrap", provider, started, UNWRAP_EXTRA, undefined, entry.keyRef);
  report({ provider, keyRef: entry.keyRef, cacheHit: false });
  return openAndZero(encryptionKey, parts.body, aad);
}
