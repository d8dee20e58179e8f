// Buffers this library decoded from the text form itself (nobody else holds them), large
// enough that deciphering them in place saves a body-sized copy. Kept beside the decoder
// (not in crypto/) so that format/ depends on nothing above it.
const decodedHere = new WeakSet<ArrayBufferLike>();

/** Bodies at least this large may be deciphered in place. */
export const IN_PLACE_MIN = 1024 * 1024;

/**
 * Marks a buffer decoded from the text form by this library (never a caller's buffer) so
 * that `openBody` may decipher its body in place: a 1 GiB text value then costs one
 * body-sized buffer, not two.
 */
export function markDecodedHere(bytes: Buffer): void {
  if (bytes.length >= IN_PLACE_MIN && bytes.byteOffset === 0) decodedHere.add(bytes.buffer);
}

/** True once for a buffer `markDecodedHere` marked: the caller may then overwrite it. */
export function takeDecodedHere(buffer: ArrayBufferLike): boolean {
  return decodedHere.delete(buffer);
}
