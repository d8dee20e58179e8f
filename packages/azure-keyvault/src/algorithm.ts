import { ConfigError, ProviderError } from "@envelope/core";

/** Key-wrapping algorithms this provider uses. RSA1_5 is deliberately absent (see README). */
export type WrapAlgorithm = "RSA-OAEP-256" | "RSA-OAEP" | "A256KW";

/**
 * Every algorithm `algorithm` accepts.
 *
 * @example
 * ALGORITHMS.includes("RSA-OAEP-256"); // true
 */
export const ALGORITHMS: readonly WrapAlgorithm[] = ["RSA-OAEP-256", "RSA-OAEP", "A256KW"];

// The first byte of every wrapped key names the algorithm, so unwrap never depends on
// today's config: data wrapped with RSA-OAEP still opens after switching to RSA-OAEP-256.
const TAG: Record<WrapAlgorithm, number> = { "RSA-OAEP-256": 0x01, "RSA-OAEP": 0x02, A256KW: 0x03 };
const BY_TAG = new Map<number, WrapAlgorithm>(
  Object.entries(TAG).map(([alg, tag]) => [tag, alg as WrapAlgorithm]),
);

/** Checks a configured algorithm. RSA1_5 gets its own explanation. */
export function checkAlgorithm(value: unknown): WrapAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (value === "RSA1_5") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "azure-kv: algorithm RSA1_5 (RSA PKCS#1 v1.5) is not supported: it is malleable, and Node.js 20.11+ refuses PKCS#1 v1.5 decryption. Use RSA-OAEP-256 (the default for RSA keys).",
      { details: { field: "algorithm" } },
    );
  }
  if (!ALGORITHMS.includes(value as WrapAlgorithm)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `azure-kv: algorithm must be one of ${ALGORITHMS.join(", ")}.`,
      {
        details: { field: "algorithm" },
      },
    );
  }
  return value as WrapAlgorithm;
}

/** The algorithm for a key type: the configured one if it fits, else the default for the type. */
export function algorithmFor(
  keyType: string | undefined,
  configured: WrapAlgorithm | undefined,
  keyId: string,
): WrapAlgorithm {
  const rsa = keyType === "RSA" || keyType === "RSA-HSM";
  const oct = keyType === "oct" || keyType === "oct-HSM";
  if (!rsa && !oct) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `azure-kv: key ${keyId} has type ${keyType ?? "unknown"}; use an RSA / RSA-HSM key (RSA-OAEP-256) or a Managed HSM oct-HSM AES-256 key (A256KW).`,
      { details: { keyRef: keyId } },
    );
  }
  const algorithm = configured ?? (rsa ? "RSA-OAEP-256" : "A256KW");
  if (rsa === (algorithm === "A256KW")) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `azure-kv: algorithm ${algorithm} does not fit key ${keyId} of type ${keyType}. RSA keys take RSA-OAEP-256 or RSA-OAEP; oct-HSM keys take A256KW.`,
      { details: { field: "algorithm", keyRef: keyId } },
    );
  }
  return algorithm;
}

/** `tag || Key Vault's wrapped key`: the bytes stored in the envelope entry. */
export function tagWrapped(algorithm: WrapAlgorithm, wrapped: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(TAG[algorithm]), wrapped]);
}

/** Splits an entry's bytes into the algorithm and what Key Vault unwraps. */
export function untagWrapped(
  wrapped: Uint8Array,
  keyRef: string,
): { algorithm: WrapAlgorithm; value: Uint8Array } {
  const algorithm = wrapped.length > 1 ? BY_TAG.get(wrapped[0]!) : undefined;
  if (!algorithm) {
    throw new ProviderError(
      "ENVELOPE_UNWRAP_FAILED",
      `azure-kv unwrap for key "${keyRef}" failed: the wrapped key does not start with a known algorithm tag, so it was not written by this provider or is corrupted. Check that the entry belongs to this key.`,
      { details: { provider: "azure-kv", keyRef, operation: "unwrap" } },
    );
  }
  return { algorithm, value: wrapped.subarray(1) };
}
