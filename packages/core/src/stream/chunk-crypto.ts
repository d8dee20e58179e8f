import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import { DecryptionError } from "../errors.js";
import { CHUNK_FINAL, CHUNK_KEY_INFO, CHUNK_MORE, TAG_LENGTH } from "./constants.js";

const INFO = Buffer.from(CHUNK_KEY_INFO, "ascii");

/**
 * Chunk key = HKDF-SHA256(ikm = stream key, salt = key envelope's message id, info =
 * "envelope:stream1:chunk-key", 32 bytes). The stream key is fresh per stream, so the
 * chunk counter alone keeps nonces unique.
 */
export function deriveChunkKey(streamKey: Uint8Array, messageId: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", streamKey, messageId, INFO, 32));
}

/** Nonce = 4 zero bytes || u64 big-endian chunk index. */
function nonce(index: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeBigUInt64BE(BigInt(index), 4);
  return out;
}

/** AAD = header prefix (11) || message id (32) || u64 index || u8 final. */
export function chunkAad(
  prefix: Uint8Array,
  messageId: Uint8Array,
  index: number,
  final: boolean,
): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + messageId.length + 9);
  out.set(prefix, 0);
  out.set(messageId, prefix.length);
  out.writeBigUInt64BE(BigInt(index), prefix.length + messageId.length);
  out[out.length - 1] = final ? CHUNK_FINAL : CHUNK_MORE;
  return out;
}

/** Encrypts one chunk and frames it: marker u8 | length u32 | ciphertext | tag. */
export function sealChunk(
  key: Buffer,
  aadBase: ChunkAadBase,
  index: number,
  final: boolean,
  plaintext: Buffer,
): Buffer {
  const cipher = createCipheriv("aes-256-gcm", key, nonce(index), { authTagLength: TAG_LENGTH });
  cipher.setAAD(chunkAad(aadBase.prefix, aadBase.messageId, index, final));
  const out = Buffer.allocUnsafe(5 + plaintext.length + TAG_LENGTH);
  out[0] = final ? CHUNK_FINAL : CHUNK_MORE;
  out.writeUInt32BE(plaintext.length, 1);
  const body = cipher.update(plaintext);
  body.copy(out, 5);
  cipher.final();
  cipher.getAuthTag().copy(out, 5 + plaintext.length);
  return out;
}

/** Opens one chunk's ciphertext || tag; any mismatch (bit flip, reorder, marker) throws. */
export function openChunk(
  key: Buffer,
  aadBase: ChunkAadBase,
  index: number,
  final: boolean,
  sealed: Buffer,
): Buffer {
  const split = sealed.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", key, nonce(index), {
    authTagLength: TAG_LENGTH,
  });
  decipher.setAAD(chunkAad(aadBase.prefix, aadBase.messageId, index, final));
  decipher.setAuthTag(sealed.subarray(split));
  const plain = decipher.update(sealed.subarray(0, split));
  try {
    decipher.final();
    return plain;
  } catch (cause) {
    plain.fill(0);
    throw new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      `Could not decrypt stream chunk ${index}: authentication failed. The file was altered, chunks were reordered, or it was cut and spliced. Discard any output written so far.`,
      { cause, details: { field: "chunk", chunk: index } },
    );
  }
}

export interface ChunkAadBase {
  readonly prefix: Uint8Array;
  readonly messageId: Uint8Array;
}
