/**
 * Per-value storage overhead of every provider and mode (issue 15, item 8).
 *
 * Seals one short value per configuration and reports what the envelope adds on top of the
 * plaintext, binary and text form, and what that costs on a 100-million-row column. Sizes are
 * deterministic (no timing), so this runs anywhere: `node --import tsx bench/storage.ts [--json]`.
 * The cloud providers run against the protocol test servers in test/servers; their wrapped-key
 * sizes are the vendors' (Vault `vault:v1:` strings, Azure RSA-OAEP-256 blocks) except AWS KMS,
 * whose real CiphertextBlob is longer than the test server's: that row is corrected to 184 B.
 */
import { createCipheriv, generateKeyPairSync, randomBytes } from "node:crypto";
import { awsKmsProvider } from "@envelope/aws-kms";
import {
  Envelope,
  type EnvelopeOptions,
  generateSigningKeyPair,
  localAesProvider,
} from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { localRsaProvider } from "@envelope/local-rsa";
import { vaultTransitProvider } from "@envelope/vault";
import { startHarness as startAzure } from "../packages/azure-keyvault/test/helpers.js";
import { startAwsKmsServer } from "../test/servers/aws-kms.js";
import { startVaultTransitServer } from "../test/servers/vault-transit.js";

/** A real AWS KMS CiphertextBlob for a 32-byte data key is 184 bytes (AES_256 GenerateDataKey). */
const REAL_AWS_BLOB = 184;
const ROWS = 100_000_000;
const CONTEXT = { table: "users", column: "email", id: "42" };
const PLAINTEXT = Buffer.from("alice@example.com"); // 17 bytes, a typical e-mail

interface Row {
  mode: string;
  binary: number;
  text: number;
  note?: string;
}

async function measure(mode: string, options: EnvelopeOptions, correction = 0, note?: string) {
  const envelope = new Envelope({ ...options, cache: false });
  const binary = await envelope.encrypt(PLAINTEXT, { context: CONTEXT, output: "binary" });
  const text = await envelope.encrypt(PLAINTEXT, { context: CONTEXT, output: "text" });
  const row: Row = {
    mode,
    binary: binary.length - PLAINTEXT.length + correction,
    // Text form is base64url of the binary form plus a short prefix: 4/3 of the correction.
    text: text.length - PLAINTEXT.length + Math.ceil((correction * 4) / 3),
  };
  if (note) row.note = note;
  return row;
}

/** The hand-rolled floor: AES-KW-wrapped data key (40 B) + IV (12 B) + GCM tag (16 B). */
function handRolled(): Row {
  const kek = randomBytes(32);
  const dek = randomBytes(32);
  const kw = createCipheriv("id-aes256-wrap", kek, Buffer.from("A6A6A6A6A6A6A6A6", "hex"));
  const wrapped = Buffer.concat([kw.update(dek), kw.final()]);
  const iv = randomBytes(12);
  const gcm = createCipheriv("aes-256-gcm", dek, iv);
  const body = Buffer.concat([gcm.update(PLAINTEXT), gcm.final(), gcm.getAuthTag()]);
  const stored = Buffer.concat([wrapped, iv, body]);
  const overhead = stored.length - PLAINTEXT.length;
  return {
    mode: "hand-rolled AES-KW + GCM (no format, no context, no key id)",
    binary: overhead,
    text: Buffer.from(stored).toString("base64").length - PLAINTEXT.length,
  };
}

function rsaPem(modulusLength: number): string {
  return generateKeyPairSync("rsa", {
    modulusLength,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  }).privateKey;
}

async function main() {
  const aes = localAesProvider({ keys: randomBytes(32) });
  const rows: Row[] = [handRolled(), await measure("local-aes", { encrypt: aes })];
  for (const bits of [2048, 3072, 4096] as const) {
    const rsa = localRsaProvider({ keys: [{ pem: rsaPem(bits) }] });
    rows.push(await measure(`local-rsa-${bits}`, { encrypt: rsa }));
  }
  rows.push(
    await measure("hierarchical (local-aes master)", {
      encrypt: hierarchicalProvider({ master: aes, store: memoryKeyStore() }),
    }),
  );
  const signer = generateSigningKeyPair();
  rows.push(
    await measure("local-aes, signed (suite 0x02)", {
      encrypt: aes,
      signing: { key: signer.privateKeyPem },
      trustedSigners: [signer.publicKey],
    }),
  );

  const kms = await startAwsKmsServer();
  const vault = await startVaultTransitServer();
  try {
    const key = kms.createKey();
    const aws = awsKmsProvider({ endpoint: kms.url, credentials: kms.credentials, keyId: key.arn });
    const probe = await aws.wrap(randomBytes(32), { context: CONTEXT });
    const blobGap = REAL_AWS_BLOB - probe.wrapped.length;
    rows.push(
      await measure("aws-kms (key ARN)", { encrypt: aws }, blobGap, "real 184 B CiphertextBlob"),
    );
    aws.destroy();

    await fetch(`${vault.url}/v1/transit/keys/pii`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken },
    });
    const transit = vaultTransitProvider({
      address: vault.url,
      keyName: "pii",
      auth: { token: vault.rootToken, renew: false },
    });
    rows.push(await measure("vault-transit", { encrypt: transit }));
    const azure = await startAzure();
    try {
      for (const keySize of [2048, 3072] as const) {
        const key = await azure.admin.createRsaKey(`rsa-${keySize}`, { keySize });
        const note = "key id on https://127.0.0.1:<port>, about as long as <name>.vault.azure.net";
        rows.push(
          await measure(`azure-kv RSA-${keySize}`, { encrypt: azure.provider(key.id!) }, 0, note),
        );
      }
    } finally {
      await azure.close();
    }
    rows.push(
      await measure("multi-wrap local-aes + local-rsa-3072", {
        encrypt: [aes, localRsaProvider({ keys: [{ pem: rsaPem(3072) }] })],
      }),
    );
  } finally {
    await kms.close();
    await vault.close();
  }

  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ plaintextBytes: PLAINTEXT.length, rows }, null, 2));
    return;
  }
  const gb = (bytes: number) => ((bytes * ROWS) / 1e9).toFixed(1);
  console.log(
    `Overhead per value (plaintext ${PLAINTEXT.length} B; cost on ${ROWS / 1e6} M rows)\n`,
  );
  console.log("| mode | binary B | text B | 100 M rows, binary | 100 M rows, text |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const mode = r.note ? `${r.mode} (${r.note})` : r.mode;
    console.log(`| ${mode} | ${r.binary} | ${r.text} | ${gb(r.binary)} GB | ${gb(r.text)} GB |`);
  }
}

await main();
