/** The parsed shape of a v1 envelope. Byte fields are views into the input. */

/** One wrapped copy of the data key: which provider, which key, and the wrapped bytes. */
export interface WrappedKey {
  /** Provider id, e.g. `local-rsa`, `aws-kms`. */
  readonly providerId: string;
  /** Key reference understood by that provider (fingerprint, ARN, key name + version). */
  readonly keyRef: string;
  /** The data key as wrapped by the provider. Not secret, but opaque. */
  readonly wrapped: Uint8Array;
}

export interface EnvelopeParts {
  readonly version: number;
  readonly suite: number;
  readonly flags: number;
  readonly messageId: Uint8Array;
  readonly commitment: Uint8Array;
  readonly entries: readonly WrappedKey[];
  /** Canonical context bytes when stored in the envelope (flag bit 0), else undefined. */
  readonly storedContext: Uint8Array | undefined;
  /** Ciphertext followed by the 16-byte GCM tag: the part rewrap never touches. */
  readonly body: Uint8Array;
  /** Suite 0x02 only: the writer's raw 32-byte Ed25519 public key. */
  readonly signerKey?: Uint8Array | undefined;
  /** Suite 0x02 only: the 64-byte Ed25519 signature (docs/FORMAT.md §14). */
  readonly signature?: Uint8Array | undefined;
}
