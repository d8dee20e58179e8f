import type { Decipher } from "node:crypto";

/**
 * `update` then `final`, as one buffer. The two outputs are zeroed once copied, and
 * `update`'s also when `final` throws: GCM's `update` returns the whole plaintext before the
 * tag is checked, CBC's all but the last block before the padding is, so a value that fails
 * (altered, or under another key) would otherwise leave its plaintext in freed memory.
 */
export function decipherAll(decipher: Decipher, data: Buffer): Buffer {
  const head = decipher.update(data);
  try {
    const tail = decipher.final();
    try {
      return Buffer.concat([head, tail]);
    } finally {
      tail.fill(0);
    }
  } finally {
    head.fill(0);
  }
}
