import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  NodeCachingMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
} from "@aws-crypto/client-node";
import {
  Envelope,
  type EnvelopeOptions,
  generateSigningKeyPair,
  localAesProvider,
} from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { localRsaProvider } from "@envelope/local-rsa";

/** One thing being measured: seals and opens values of the given sizes. */
export interface Subject {
  /** Short label used in tables, e.g. `envelope local-aes`. */
  name: string;
  /** Family, for grouping and the chart: floor, envelope, esdk. */
  family: "floor" | "envelope" | "esdk";
  /** Which operations make sense for this subject. */
  ops: readonly ("encrypt" | "decrypt")[];
  /** Whether it runs the 1 MiB case too. */
  large: boolean;
  /** False when `open` does not return the plaintext (the RSA floor opens a key, not a value). */
  roundTrips?: boolean;
  seal(plaintext: Buffer): Promise<unknown> | unknown;
  open(sealed: unknown): Promise<Buffer> | Buffer;
}

export const CONTEXT = { table: "users", column: "email", id: "42" };

/** Builds every subject; keys are random per run (nothing secret is kept or printed). */
export function buildSubjects(): {
  subjects: Subject[];
  rsaPem: { privateKey: string; publicKey: string };
} {
  const aesKey = randomBytes(32);
  const rsa = generateKeyPairSync("rsa", {
    modulusLength: 3072,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const subjects: Subject[] = [floor(), rsaFloor(rsa)];

  const aes = localAesProvider({ keys: aesKey });
  const rsaProvider = localRsaProvider({ keys: [{ pem: rsa.privateKey }] });
  const env = (
    name: string,
    ops: Subject["ops"],
    options: EnvelopeOptions,
    large = false,
  ): Subject => {
    const envelope = new Envelope(options);
    return {
      name,
      family: "envelope",
      ops,
      large,
      seal: (pt) => envelope.encrypt(pt, { context: CONTEXT, output: "binary" }),
      open: (sealed) => envelope.decrypt(sealed as Buffer, { context: CONTEXT }),
    };
  };
  // Signed mode (suite 0x02): the writer signs with Ed25519, the reader pins its key and
  // verifies before unwrapping. Beside the unsigned local-aes rows, so the cost shows.
  const signer = generateSigningKeyPair();
  const signed = { signing: { key: signer.privateKeyPem }, trustedSigners: [signer.publicKey] };
  subjects.push(
    env("envelope local-aes", ["encrypt", "decrypt"], { encrypt: aes, cache: false }, true),
    env(
      "envelope local-aes signed",
      ["encrypt", "decrypt"],
      { encrypt: aes, cache: false, ...signed },
      true,
    ),
    env("envelope local-aes warm cache", ["decrypt"], { encrypt: aes }, true),
    env("envelope local-aes warm cache signed", ["decrypt"], { encrypt: aes, ...signed }, true),
    env("envelope local-aes data-key reuse", ["encrypt"], { encrypt: aes, dataKeyReuse: {} }, true),
    env(
      "envelope hierarchical",
      ["encrypt", "decrypt"],
      { encrypt: hierarchicalProvider({ master: aes, store: memoryKeyStore() }), cache: false },
      false,
    ),
    env("envelope local-rsa", ["encrypt", "decrypt"], { encrypt: rsaProvider, cache: false }),
    env("envelope local-rsa warm cache", ["decrypt"], { encrypt: rsaProvider }),
    env("envelope local-rsa data-key reuse", ["encrypt"], {
      encrypt: rsaProvider,
      dataKeyReuse: {},
    }),
  );

  const aesKeyring = () =>
    new RawAesKeyringNode({
      keyName: "bench-aes",
      keyNamespace: "bench",
      unencryptedMasterKey: new Uint8Array(aesKey),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
  const rsaKeyring = () =>
    new RawRsaKeyringNode({
      keyName: "bench-rsa",
      keyNamespace: "bench",
      rsaKey: { privateKey: rsa.privateKey, publicKey: rsa.publicKey },
      oaepHash: "sha256",
    });
  const suites = [
    ["committing", AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY],
    [
      "default",
      AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    ],
  ] as const;
  for (const [wrap, keyring] of [
    ["raw-aes", aesKeyring],
    ["raw-rsa", rsaKeyring],
  ] as const) {
    for (const [suiteName, suiteId] of suites) {
      subjects.push(esdk(`esdk ${wrap} ${suiteName}`, keyring(), suiteId, wrap === "raw-aes"));
      const cmm = new NodeCachingMaterialsManager({
        backingMaterials: keyring(),
        cache: getLocalCryptographicMaterialsCache(1000),
        maxAge: 60_000,
        maxMessagesEncrypted: 1000,
      });
      subjects.push(esdk(`esdk ${wrap} ${suiteName} caching CMM`, cmm, suiteId, false));
    }
  }
  return { subjects, rsaPem: rsa };
}

function esdk(
  name: string,
  keyringOrCmm: RawAesKeyringNode | RawRsaKeyringNode | NodeCachingMaterialsManager,
  suiteId: AlgorithmSuiteIdentifier,
  large: boolean,
): Subject {
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  return {
    name,
    family: "esdk",
    ops: ["encrypt", "decrypt"],
    large,
    seal: async (pt) =>
      (
        await encrypt(keyringOrCmm, pt, {
          encryptionContext: CONTEXT,
          suiteId,
          plaintextLength: pt.length,
        })
      ).result,
    open: async (sealed) => (await decrypt(keyringOrCmm, sealed as Buffer)).plaintext,
  };
}

/** The floor: AES-256-GCM with a key already in hand and a random 96-bit nonce. */
function floor(): Subject {
  const key = randomBytes(32);
  return {
    name: "floor node:crypto AES-256-GCM",
    family: "floor",
    ops: ["encrypt", "decrypt"],
    large: true,
    seal(pt) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, nonce);
      const ct = cipher.update(pt);
      cipher.final();
      return { nonce, ct, tag: cipher.getAuthTag() };
    },
    open(sealed) {
      const { nonce, ct, tag } = sealed as { nonce: Buffer; ct: Buffer; tag: Buffer };
      const decipher = createDecipheriv("aes-256-gcm", key, nonce);
      decipher.setAuthTag(tag);
      const pt = decipher.update(ct);
      decipher.final();
      return pt;
    },
  };
}

/** One bare RSA-OAEP-SHA256 3072 operation on a 32-byte key: what bounds any RSA decrypt. */
function rsaFloor(rsa: { privateKey: string; publicKey: string }): Subject {
  const padding = constants.RSA_PKCS1_OAEP_PADDING;
  // Parsed once, as every provider does: the floor is the key operation alone.
  const privateKey = createPrivateKey(rsa.privateKey);
  const publicKey = createPublicKey(rsa.publicKey);
  return {
    name: "floor RSA-OAEP-3072 (one key op)",
    family: "floor",
    ops: ["encrypt", "decrypt"],
    large: false,
    roundTrips: false,
    seal: () => publicEncrypt({ key: publicKey, padding, oaepHash: "sha256" }, randomBytes(32)),
    open: (sealed) =>
      privateDecrypt({ key: privateKey, padding, oaepHash: "sha256" }, sealed as Buffer),
  };
}
