// Which HKDF-SHA256 path is cheaper on this runtime: three Hmac objects (hkdfHmacs) or one
// hkdfSync call? crypto/kdf.ts picks by Node version; this measures it, alternating the two
// in one process (best of 15 rounds of 20,000 derivations each):
//   node --import tsx bench/profile/hkdf-paths.ts
import { hkdfSync, randomBytes } from "node:crypto";
import { hkdfHmacs } from "../../packages/core/src/crypto/kdf.js";

const INFO = "envelope:v1:suite1:key+commitment";
const keys = Array.from({ length: 64 }, () => randomBytes(32));
const ids = Array.from({ length: 64 }, () => randomBytes(32));
const paths: [string, (k: Buffer, id: Buffer) => unknown][] = [
  ["three Hmac objects", (k, id) => hkdfHmacs(k, id)],
  ["hkdfSync", (k, id) => hkdfSync("sha256", k, id, INFO, 64)],
];
const N = 20_000;
const best = paths.map(() => Number.POSITIVE_INFINITY);
for (let round = 0; round < 15; round++) {
  paths.forEach(([, derive], p) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) derive(keys[i & 63]!, ids[i & 63]!);
    best[p] = Math.min(best[p]!, Number(process.hrtime.bigint() - t) / N / 1000);
  });
}
console.log(
  `Node ${process.versions.node}: ${paths.map(([name], p) => `${name} ${best[p]!.toFixed(2)} µs`).join(", ")}`,
);
