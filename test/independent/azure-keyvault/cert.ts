// A self-signed TLS certificate made at test time with node:crypto alone (no openssl, no
// dependency): a P-256 key and a minimal X.509 v3 certificate built as DER by hand, with
// basicConstraints CA:TRUE (so it can be given as `ca`) and subjectAltName for the names
// the tests use. Written apart from the project's own test TLS helper.
import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";

const tlv = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  const len =
    n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.concat([Buffer.of(tag), len, content]);
};
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts));
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split(".").map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const v of rest) {
    const stack = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) stack.unshift((x & 0x7f) | 0x80);
    bytes.push(...stack);
  }
  return tlv(0x06, Buffer.from(bytes));
};
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const time = (d: Date) =>
  tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-:T]/g, "")}Z`, "ascii"));
// A serial number in minimal DER: positive, and no leading zero byte.
const serial = () => {
  const b = randomBytes(12);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return tlv(0x02, b);
};

export interface TestCert {
  certPem: string;
  keyPem: string;
}

/** A self-signed certificate for `dnsNames` and 127.0.0.1, valid from yesterday for 2 days. */
export function selfSignedCert(dnsNames: readonly string[]): TestCert {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const name = seq(set(seq(oid("2.5.4.3"), utf8("envelope independent azure test"))));
  const ecdsaSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const now = Date.now();
  const altNames = seq(
    ...dnsNames.map((n) => tlv(0x82, Buffer.from(n, "ascii"))),
    tlv(0x87, Buffer.of(127, 0, 0, 1)),
  );
  const extensions = tlv(
    0xa3,
    seq(
      seq(oid("2.5.29.19"), tlv(0x01, Buffer.of(0xff)), tlv(0x04, seq(tlv(0x01, Buffer.of(0xff))))),
      seq(oid("2.5.29.17"), tlv(0x04, altNames)),
    ),
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.of(2))),
    serial(),
    ecdsaSha256,
    name,
    seq(time(new Date(now - 86_400_000)), time(new Date(now + 2 * 86_400_000))),
    name,
    publicKey.export({ type: "spki", format: "der" }),
    extensions,
  );
  const signature = sign("sha256", tbs, privateKey as KeyObject);
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.of(0), signature])));
  const lines = der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`,
    keyPem: createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" }))
      .export({ type: "pkcs8", format: "pem" })
      .toString(),
  };
}
