import { generate } from "selfsigned";

/** A TLS key pair and certificate for a test server; `ca` is what clients must trust. */
export interface TestCertificate {
  /** Private key, PEM. */
  key: string;
  /** Self-signed certificate, PEM. */
  cert: string;
  /** The same certificate, to pass as a client's trusted CA (`new https.Agent({ ca })`). */
  ca: string;
}

let cached: Promise<TestCertificate> | undefined;

/**
 * A self-signed certificate for `localhost`, `127.0.0.1` and `::1`, made at test time (never
 * checked in) and shared by every test server in the process: RSA key generation is slow.
 *
 * @example
 * const { key, cert, ca } = await testCertificate();
 * const server = https.createServer({ key, cert }, handler);
 * const agent = new https.Agent({ ca });
 */
export function testCertificate(): Promise<TestCertificate> {
  cached ??= generate([{ name: "commonName", value: "localhost" }], {
    keySize: 2048,
    algorithm: "sha256",
    notAfterDate: new Date(Date.now() + 24 * 3600 * 1000),
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  }).then((pems) => ({ key: pems.private, cert: pems.cert, ca: pems.cert }));
  return cached;
}
