// Attacker review of hierarchical mode. The attacker can write to the database (envelopes
// and the key store's table/file) and holds every public key, but no master key. Each
// probe asserts the SAFE outcome; findings fixed in this review are named "FINDING" in the
// test title and their tests fail on the code before the fix.
import { createHash, createHmac, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import {
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  generateSigningKeyPair,
  type KeyProvider,
  localAesProvider,
  type WrappedKey,
} from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, expect, it } from "vitest";
import { derive } from "../src/data-key.js";
import {
  fileKeyStore,
  formatVerifyReport,
  hierarchicalProvider,
  type KeyStore,
  memoryKeyStore,
  rotateMaster,
  type StoredKeyRecord,
  verifyKeyStore,
} from "../src/index.js";
import { keyCheckOf, sealRecord } from "../src/record.js";
import { countingMaster } from "./helpers.js";

const ctx = (id: string, column = "email", table = "users") => ({ table, column, id });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (EnvelopeError.isInstance(error)) return error.code;
    throw error;
  }
  return "NO ERROR";
}

/** The envelope with its entries replaced (what a database writer can do). */
function withEntries(sealed: Uint8Array, entries: WrappedKey[]): Uint8Array {
  return encodeEnvelope({ ...decodeEnvelope(sealed), entries });
}

function entryOf(sealed: Uint8Array): WrappedKey {
  return decodeEnvelope(sealed).entries[0]!;
}

/** A store whose records the attacker edits at will (the database table). */
function tamperable(inner: KeyStore) {
  const planted = new Map<string, StoredKeyRecord>();
  const store: KeyStore = {
    name: inner.name,
    get: async (id) => planted.get(id) ?? inner.get(id),
    put: (r) => inner.put(r),
    list: async () => [...(await inner.list()), ...planted.values()],
    update: (id, v, r) => inner.update(id, v, r),
  };
  return { store, plant: (r: StoredKeyRecord) => planted.set(r.id, r) };
}

/**
 * A value sealed by a writer, and the attacker's record: a copy of its IK's record under
 * `id` (a fresh checksum needs no key; the key check is kept), `change`d, with the value's
 * entry pointed at it.
 */
async function plantedCopy(
  master: KeyProvider,
  id: string,
  change: (real: StoredKeyRecord) => Partial<StoredKeyRecord> = () => ({}),
) {
  const { store, plant } = tamperable(memoryKeyStore());
  const writer = hierarchicalProvider({ master, store });
  const sealed = await new Envelope({ encrypt: writer }).encrypt("x", {
    context: ctx("1"),
    output: "binary",
  });
  const real = (await store.get(writer.stats().current!))!;
  plant({ ...sealRecord({ ...real, id, ...change(real) }), version: 1 });
  return { store, moved: withEntries(sealed, [{ ...entryOf(sealed), keyRef: id }]) };
}

describe("attack review: values under the wrong context", () => {
  const master = localAesProvider({ keys: randomBytes(32) });

  it.each([
    ["another row", ctx("43")],
    ["another column", ctx("42", "phone")],
    ["another table", ctx("42", "email", "admins")],
  ])("a value moved to %s does not open", async (_, wrong) => {
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master, store: memoryKeyStore() }),
    });
    const sealed = await envelope.encrypt("alice@example.com", {
      context: ctx("42"),
      output: "binary",
    });
    expect(await codeOf(envelope.decrypt(sealed, { context: wrong }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    expect((await envelope.decrypt(sealed, { context: ctx("42") })).toString()).toBe(
      "alice@example.com",
    );
  });

  it("another tenant's value (own master, shared key-store table, same context) does not open", async () => {
    const store = memoryKeyStore();
    const tenantA = new Envelope({
      encrypt: hierarchicalProvider({ master: localAesProvider({ keys: randomBytes(32) }), store }),
    });
    const tenantB = new Envelope({
      encrypt: hierarchicalProvider({ master: localAesProvider({ keys: randomBytes(32) }), store }),
    });
    const fromB = await tenantB.encrypt("b-secret", { context: ctx("1"), output: "binary" });
    expect(await codeOf(tenantA.decrypt(fromB, { context: ctx("1") }))).toBe(
      "ENVELOPE_KEY_NOT_FOUND",
    );
  });
});

describe("attack review: intermediate keys and derivation inputs the attacker chose", () => {
  it("a renamed entry (another cached IK id) or a changed seed never yields a plaintext", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    const provider = hierarchicalProvider({ master, store: memoryKeyStore() });
    const envelope = new Envelope({ encrypt: provider });
    const a = await envelope.encrypt("a", { context: ctx("1"), output: "binary" });
    const oldIk = provider.stats().current!;
    await provider.rotate();
    const b = await envelope.encrypt("b", { context: ctx("1"), output: "binary" });
    // b's seed under a's (cached) IK, a's seed flipped, a 40-byte entry that is not AES-KW.
    const seedB = entryOf(b).wrapped;
    const flipped = Buffer.from(entryOf(a).wrapped);
    flipped[0]! ^= 1;
    const forged = [
      withEntries(b, [{ ...entryOf(b), keyRef: oldIk }]),
      withEntries(a, [{ ...entryOf(a), wrapped: seedB }]),
      withEntries(a, [{ ...entryOf(a), wrapped: flipped }]),
      withEntries(a, [{ ...entryOf(a), wrapped: randomBytes(40) }]),
    ];
    const codes = await Promise.all(
      forged.map((f) => codeOf(envelope.decrypt(f, { context: ctx("1") }))),
    );
    expect(codes).toEqual([
      "ENVELOPE_COMMITMENT_MISMATCH",
      "ENVELOPE_COMMITMENT_MISMATCH",
      "ENVELOPE_COMMITMENT_MISMATCH",
      "ENVELOPE_UNWRAP_FAILED",
    ]);
  });

  it("a planted record reusing another record's wrapped IK (no KMS context binding) fails the key check", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    // Copy the wrapped IK under a new id with a fresh (keyless) checksum; the key check
    // cannot be recomputed without the IK, so the attacker keeps the old one.
    const { store, moved } = await plantedCopy(master, `ik-${"ab".repeat(12)}`);
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    expect(await codeOf(reader.decrypt(moved, { context: ctx("1") }))).toBe("ENVELOPE_BAD_KEY");
  });

  it("a key store that answers with another id's record is refused (FINDING: the record's id was not compared with the id asked for)", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    const inner = memoryKeyStore();
    const writer = hierarchicalProvider({ master, store: inner });
    const sealed = await new Envelope({ encrypt: writer }).encrypt("x", {
      context: ctx("1"),
      output: "binary",
    });
    const realId = writer.stats().current!;
    // A custom store with a lookup bug (or an edited row's id column): any id → that record.
    const sloppy: KeyStore = { ...inner, name: "sloppy", get: () => inner.get(realId) };
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store: sloppy }) });
    const other = `ik-${"cd".repeat(12)}`;
    const renamed = withEntries(sealed, [{ ...entryOf(sealed), keyRef: other }]);
    expect(await codeOf(reader.decrypt(renamed, { context: ctx("1") }))).toBe("ENVELOPE_BAD_KEY");
  });

  it("the key check's input can never be a data key's input (distinct labels and lengths)", () => {
    const ik = randomBytes(32);
    const id = `ik-${"00".repeat(12)}`;
    const seed = Buffer.alloc(32);
    Buffer.from(id).copy(seed);
    expect(derive(ik, seed).toString("hex")).not.toBe(keyCheckOf(ik, id));
  });
});

describe("attack review: downgrades", () => {
  it.each([1, 3] as const)(
    "changing the suite byte of a suite %i value does not open it",
    async (suite) => {
      const master = localAesProvider({ keys: randomBytes(32) });
      const envelope = new Envelope({
        encrypt: hierarchicalProvider({ master, store: memoryKeyStore(), suite }),
      });
      const sealed = await envelope.encrypt("x", { context: ctx("1"), output: "binary" });
      const other = Buffer.from(sealed);
      other[1] = suite === 1 ? 3 : 1;
      expect(await codeOf(envelope.decrypt(other, { context: ctx("1") }))).toBe(
        "ENVELOPE_COMMITMENT_MISMATCH",
      );
    },
  );
});

describe("attack review: writer-side key reuse", () => {
  it("concurrent writers and restarts each get their own IK; 20,000 data keys are distinct", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    const store = memoryKeyStore();
    const writers = [0, 1, 2].map(() => hierarchicalProvider({ master, store }));
    const keys = new Set<string>();
    const seeds = new Set<string>();
    await Promise.all(
      writers.map(async (w) => {
        for (let i = 0; i < 20_000 / 3; i++) {
          const { dataKey, entry } = await w.generateDataKey!({ context: {} });
          keys.add(Buffer.from(dataKey).toString("hex"));
          seeds.add(Buffer.from(entry.wrapped).toString("hex"));
        }
      }),
    );
    const ids = new Set(writers.map((w) => w.stats().current));
    expect(ids.size).toBe(3);
    expect(keys.size).toBe(seeds.size);
    expect(keys.size).toBe(3 * Math.ceil(20_000 / 3));
    // A restarted writer never takes up an old IK for writing.
    const restarted = hierarchicalProvider({ master, store });
    await restarted.generateDataKey!({ context: {} });
    expect(ids.has(restarted.stats().current)).toBe(false);
  });

  it("a clock that goes backwards does not lift the use limit", async () => {
    let t = 1_000_000;
    const master = localAesProvider({ keys: randomBytes(32) });
    const provider = hierarchicalProvider({
      master,
      store: memoryKeyStore(),
      rotateAfter: { uses: 5 },
      now: () => (t -= 1000),
    });
    for (let i = 0; i < 12; i++) await provider.generateDataKey!({ context: {} });
    expect(provider.stats().intermediateKeysCreated).toBe(3);
  });

  it("FINDING: a master slower than rotateAfter.ageMs makes one encrypt create IKs without end; now it creates one", async () => {
    let t = 0;
    const { provider: inner, calls } = countingMaster();
    // Each master call takes (on this clock) longer than the IK's maximal age. After 50
    // calls the master gives up, so the test ends whatever the code does.
    const slow: KeyProvider = {
      ...inner,
      wrap: async (k, r) => {
        t += 10;
        if (calls.wrap >= 50) throw new Error("master: test budget of 50 calls spent");
        return inner.wrap(k, r);
      },
    };
    const provider = hierarchicalProvider({
      master: slow,
      store: memoryKeyStore(),
      rotateAfter: { ageMs: 5 },
      now: () => t,
    });
    const outcome = await provider.generateDataKey!({ context: {} }).then(
      () => "sealed",
      (error: Error) => error.message,
    );
    const created = calls.wrap;
    provider.clear();
    expect(outcome).toBe("sealed");
    expect(created).toBe(1);
  });
});

describe("attack review: resources", () => {
  it("FINDING: a planted record that fails its key check costs one master call per TTL, not one per decrypt", async () => {
    const { provider: master, calls } = countingMaster();
    const { store, moved } = await plantedCopy(master, `ik-${"ef".repeat(12)}`);
    let t = 0;
    const reader = hierarchicalProvider({ master, store, now: () => t });
    const envelope = new Envelope({ encrypt: reader });
    const before = calls.unwrap;
    const codes: string[] = [];
    for (let i = 0; i < 50; i++)
      codes.push(await codeOf(envelope.decrypt(moved, { context: ctx("1") })));
    expect(new Set(codes)).toEqual(new Set(["ENVELOPE_BAD_KEY"]));
    expect(calls.unwrap - before).toBe(1);
    expect(reader.stats().storeReads).toBe(1);
    // After the TTL the store is asked again (a repaired record would be found).
    t += 10_001;
    expect(await codeOf(envelope.decrypt(moved, { context: ctx("1") }))).toBe("ENVELOPE_BAD_KEY");
    expect(calls.unwrap - before).toBe(2);
  });

  it("a value naming 16 fresh unknown ids is refused before any store read (maxEntriesTried)", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    const provider = hierarchicalProvider({ master, store: memoryKeyStore() });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("x", { context: ctx("1"), output: "binary" });
    const entries = Array.from({ length: 16 }, () => ({
      providerId: "hierarchical",
      keyRef: `ik-${randomBytes(12).toString("hex")}`,
      wrapped: randomBytes(32),
    }));
    const reader = hierarchicalProvider({ master, store: memoryKeyStore() });
    const code = await codeOf(
      new Envelope({ encrypt: reader }).decrypt(withEntries(sealed, entries), {
        context: ctx("1"),
      }),
    );
    expect(code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    expect(reader.stats().storeReads).toBe(0);
  });
});

describe("attack review: oversized store records", () => {
  it.each([
    ["an 8 MiB wrapped IK", { wrapped: randomBytes(8 << 20) }],
    ["a 1 MiB master key reference", { keyRef: "k".repeat(1 << 20) }],
  ])(
    "FINDING: a planted record with %s is refused before any master call (the envelope limits, FORMAT.md §8)",
    async (_, change) => {
      const { provider: master, calls } = countingMaster();
      const { store, moved } = await plantedCopy(master, `ik-${"34".repeat(12)}`, (real) => ({
        master: { ...real.master, ...change },
      }));
      const before = calls.unwrap;
      const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
      expect(await codeOf(reader.decrypt(moved, { context: ctx("1") }))).toBe("ENVELOPE_BAD_KEY");
      expect(calls.unwrap - before).toBe(0);
    },
  );
});

describe("attack review: what errors, reports, inspect and JSON show", () => {
  it("strings from a planted store record are escaped and capped, and quoted at most 200 chars each (a 2 KB key reference made a 4.4 KB error before)", async () => {
    const master = localAesProvider({ keys: randomBytes(32) });
    const { store, plant } = tamperable(memoryKeyStore());
    const envelope = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    const sealed = await envelope.encrypt("x", { context: ctx("1"), output: "binary" });
    const id = `ik-${"12".repeat(12)}`;
    // As long as the limits allow (64-byte provider id, 2048-byte key reference).
    const evilId = "\u001b[2J\nERROR fake log line";
    const evilRef = `\u001b[2J\nERROR fake log line ${"A".repeat(2000)}`;
    plant({
      ...sealRecord({
        id,
        createdAt: 0,
        master: { providerId: evilId, keyRef: evilRef, wrapped: randomBytes(40) },
        keyCheck: "0".repeat(64),
      }),
      version: 1,
    });
    const moved = withEntries(sealed, [{ ...entryOf(sealed), keyRef: id }]);
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    let message = "";
    try {
      await reader.decrypt(moved, { context: ctx("1") });
    } catch (error) {
      message = `${(error as Error).message} ${JSON.stringify((error as EnvelopeError).details ?? {})}`;
      const cause = (error as { cause?: unknown }).cause;
      if (cause instanceof Error) message += cause.message;
    }
    expect(message).toContain("not configured");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    expect(message).not.toMatch(/[\u0000-\u001f]/);
    expect(message.length).toBeLessThan(3000);
  });

  it("no IK, data key or plaintext in inspect, JSON, stats, store records or errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hier-attack-"));
    try {
      const masterKey = randomBytes(32);
      const store = await fileKeyStore({ path: join(dir, "keys.json"), create: true });
      const provider = hierarchicalProvider({
        master: localAesProvider({ keys: masterKey }),
        store,
      });
      const { dataKey } = await provider.generateDataKey!({ context: {} });
      const envelope = new Envelope({ encrypt: provider });
      await envelope.encrypt("plain-secret-value", { context: ctx("1") });
      // The IK itself: unwrap the stored record with the master (what only the owner can do).
      const record = (await store.list())[0]!;
      const ik = await localAesProvider({ keys: masterKey }).unwrap(record.master, { context: {} });
      const shown = [
        inspect(provider, { depth: 10 }),
        JSON.stringify(provider),
        JSON.stringify(provider.stats()),
        JSON.stringify(await store.list()),
        formatVerifyReport(
          await verifyKeyStore(store, { masters: [localAesProvider({ keys: masterKey })] }),
        ),
      ].join("\n");
      for (const secret of [ik, dataKey, masterKey]) {
        expect(shown).not.toContain(Buffer.from(secret).toString("hex"));
        expect(shown).not.toContain(Buffer.from(secret).toString("base64"));
      }
      expect(shown).not.toContain("plain-secret-value");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("attack review: master rotation drops no entry on trust", () => {
  it("FINDING: rotateMaster to a key that cannot open what it wrapped leaves every record as it was", async () => {
    const { provider: old } = countingMaster();
    const store = memoryKeyStore();
    const envelope = new Envelope({ encrypt: hierarchicalProvider({ master: old, store }) });
    const sealed = await envelope.encrypt("x", { context: ctx("1") });
    const before = await store.list();
    // The new master wraps under a key other than the one it unwraps with (a wrong public
    // key, a stale cached key, a KMS bug): what it returns never opens to the IK.
    const right = localAesProvider({ keys: randomBytes(32) });
    const wrong = localAesProvider({ keys: randomBytes(32) });
    const broken: KeyProvider = {
      ...right,
      id: right.id,
      keyRef: right.keyRef,
      wrap: async (k, r) => ({ ...(await wrong.wrap(k, r)), keyRef: right.keyRef }),
    };
    const report = await rotateMaster(store, { from: old, to: broken, allowFailures: true });
    expect(report.rewrapped).toBe(0);
    expect(report.failed.map((f) => f.code)).toEqual(["ENVELOPE_UNWRAP_FAILED"]);
    expect(await store.list()).toEqual(before);
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master: old, store }) });
    expect(await reader.decrypt(sealed, { context: ctx("1"), as: "text" })).toBe("x");
  });
});

describe("attack review: a master whose wrapping key is public", () => {
  it("whoever holds the public key and can write the store plants an IK; only signed mode refuses the forgery", async () => {
    const pair = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const store = memoryKeyStore();
    const master = localRsaProvider({ keys: { pem: pair.privateKey } });
    const signer = generateSigningKeyPair();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master, store }),
      signing: { key: signer.privateKeyPem },
    });
    const genuine = await writer.encrypt("genuine", { context: ctx("1") });
    // The attacker: the public key (encrypt-only provider) and write access to the store.
    const attacker = new Envelope({
      encrypt: hierarchicalProvider({
        master: localRsaProvider({ keys: { pem: pair.publicKey } }),
        store,
      }),
    });
    const forged = await attacker.encrypt("forged", { context: ctx("1") });
    // An unsigned reader cannot tell (as in direct mode with a public wrapping key)…
    const unsignedReader = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    expect(await unsignedReader.decrypt(forged, { context: ctx("1"), as: "text" })).toBe("forged");
    // …a reader in signed mode refuses it and still opens the genuine value.
    const signedReader = new Envelope({
      encrypt: hierarchicalProvider({ master, store }),
      trustedSigners: [signer.publicKey],
    });
    expect(await codeOf(signedReader.decrypt(forged, { context: ctx("1") }))).toBe(
      "ENVELOPE_UNSIGNED",
    );
    expect(await signedReader.decrypt(genuine, { context: ctx("1"), as: "text" })).toBe("genuine");
  });
});

describe("README examples, literally (paths moved to a temp directory)", () => {
  it("the minimal example, rotateMaster's report and the verify script run as written", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hier-readme-"));
    const saved = process.env.MASTER_KEY;
    process.env.MASTER_KEY = randomBytes(32).toString("hex");
    try {
      const path = join(dir, "envelope-keys.json");
      // --- Minimal example ---
      const store = await fileKeyStore({ path, create: true }); // create: first deployment only
      const provider = hierarchicalProvider({
        master: localAesProvider({ keys: process.env.MASTER_KEY! }),
        store,
        rotateAfter: { ageMs: 24 * 3600_000, uses: 1_000_000 },
      });
      const envelope = new Envelope({ encrypt: provider });
      const sealed = await envelope.encrypt("alice@example.com", {
        context: { table: "users", column: "email", id: "42" },
      });
      const email = await envelope.decrypt(sealed, {
        context: { table: "users", column: "email", id: "42" },
        as: "text",
      });
      expect(email).toBe("alice@example.com");
      expect(envelope.inspect(sealed).entries[0]!.keyRef).toMatch(/^ik-[0-9a-f]{24}$/);
      // --- Rotation ---
      const oldMaster = localAesProvider({ keys: process.env.MASTER_KEY! });
      const newMaster = localAesProvider({ keys: randomBytes(32) });
      const report = await rotateMaster(store, { from: oldMaster, to: newMaster, concurrency: 8 });
      expect(report).toMatchObject({ total: 1, rewrapped: 1, native: 0, unchanged: 0, failed: [] });
      expect(typeof report.durationMs).toBe("number");
      // --- scripts/verify-keystore.ts (with the new master, as the rotation steps say) ---
      const reopened = await fileKeyStore({ path });
      const verified = await verifyKeyStore(reopened, { masters: [newMaster] });
      expect(formatVerifyReport(verified)).toContain("1 intermediate keys, 1 ok, 0 failed");
      expect(verified.failures.length > 0 ? 1 : 0).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.MASTER_KEY;
      else process.env.MASTER_KEY = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("docs/FORMAT.md §10.3, computed from the text alone", () => {
  it("entry, key check and checksum of a real value and its record match the spec", async () => {
    const masterKey = randomBytes(32);
    const master = localAesProvider({ keys: masterKey });
    const store = memoryKeyStore();
    const envelope = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    const sealed = await envelope.encrypt("x", { context: ctx("1"), output: "binary" });
    const entry = entryOf(sealed);
    expect(entry.providerId).toBe("hierarchical");
    expect(entry.keyRef).toMatch(/^ik-[0-9a-f]{24}$/);
    expect(entry.wrapped.length).toBe(32);
    const record = (await store.get(entry.keyRef))!;
    const ik = Buffer.from(
      await master.unwrap(record.master, { context: { "envelope-intermediate-key": record.id } }),
    );
    const keyCheck = createHmac("sha256", ik)
      .update(Buffer.from("envelope:hierarchical:v1:key-check:", "ascii"))
      .update(Buffer.from(record.id, "ascii"))
      .digest("hex");
    expect(record.keyCheck).toBe(keyCheck);
    const F = (x: string | Uint8Array) => {
      const bytes = typeof x === "string" ? Buffer.from(x, "utf8") : Buffer.from(x);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    const checksum = createHash("sha256")
      .update("envelope:hierarchical:v1:record:")
      .update(F(record.id))
      .update(F(String(record.createdAt)))
      .update(F(record.master.providerId))
      .update(F(record.master.keyRef))
      .update(F(record.master.wrapped))
      .update(F(record.keyCheck))
      .digest("hex");
    expect(record.checksum).toBe(checksum);
    // The DEK from the seed opens the value: rewrap the entry as local-aes with that DEK.
    const dek = createHmac("sha256", ik)
      .update(Buffer.from("envelope:hierarchical:v1:data-key:", "ascii"))
      .update(entry.wrapped)
      .digest();
    const direct = withEntries(sealed, [await master.wrap(dek, { context: {} })]);
    const plain = new Envelope({ encrypt: master });
    expect(await plain.decrypt(direct, { context: ctx("1"), as: "text" })).toBe("x");
  });
});

describe("attack review: the writer's own intermediate key vanishes from the store", () => {
  it.each([
    ["deleted", (_r: StoredKeyRecord) => undefined],
    [
      "replaced by a record of another key",
      (r: StoredKeyRecord) => ({ ...r, keyCheck: "0".repeat(64) }),
    ],
  ])(
    "FINDING: once its record is %s, a writer stops sealing under that IK within storeCheckMs",
    async (_, edit) => {
      const master = localAesProvider({ keys: randomBytes(32) });
      const inner = memoryKeyStore();
      const edits = new Map<string, StoredKeyRecord | undefined>();
      const store: KeyStore = {
        ...inner,
        get: async (id) => (edits.has(id) ? edits.get(id) : inner.get(id)),
      };
      let t = 1_000_000;
      const writer = hierarchicalProvider({ master, store, now: () => t });
      const envelope = new Envelope({ encrypt: writer });
      await envelope.encrypt("before", { context: ctx("1") });
      const first = writer.stats().current!;
      // A DB writer deletes/edits the row, or the store is restored from an older backup.
      const record = (await inner.get(first))!;
      const edited = edit(record);
      edits.set(first, edited && { ...sealRecord(edited), version: 1 });
      t += 60_001;
      const after = await envelope.encrypt("after", { context: ctx("1") });
      // Another process (or this one after a restart) must be able to open what was sealed.
      const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
      expect(await reader.decrypt(after, { context: ctx("1"), as: "text" })).toBe("after");
      expect(writer.stats().current).not.toBe(first);
    },
  );
});

describe("the store check and a master rotation", () => {
  it("a writer keeps its IK across rotateMaster (same key check) and re-reads the store once per storeCheckMs", async () => {
    const { provider: old } = countingMaster();
    const next = localAesProvider({ keys: randomBytes(32) });
    const inner = memoryKeyStore();
    let reads = 0;
    const store: KeyStore = { ...inner, get: (id) => (reads++, inner.get(id)) };
    let t = 1_000_000;
    const writer = hierarchicalProvider({ master: old, store, now: () => t });
    const envelope = new Envelope({ encrypt: writer });
    await envelope.encrypt("a", { context: ctx("1") });
    const ik = writer.stats().current;
    expect((await rotateMaster(inner, { from: old, to: next })).rewrapped).toBe(1);
    for (let i = 0; i < 100; i++) await envelope.encrypt("b", { context: ctx("1") });
    expect(reads).toBe(0);
    t += 60_000;
    for (let i = 0; i < 100; i++) await envelope.encrypt("c", { context: ctx("1") });
    expect(reads).toBe(1);
    expect(writer.stats().current).toBe(ik);
  });
});
