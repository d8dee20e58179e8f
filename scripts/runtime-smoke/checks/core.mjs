// @envelope/core with its built-in local-aes provider: round trip in both forms, the
// context binding, tamper detection, rewrap with a byte-identical body, and the unwrap cache.
import { randomBytes } from "node:crypto";
import {
  createEnvelope,
  decodeEnvelope,
  Envelope,
  fromText,
  localAesProvider,
} from "@envelope/core";
import { check, rejectsWith, sameBytes } from "../assert.mjs";

const context = { table: "users", column: "email", id: "42" };
const plaintext = "smoke-test@example.invalid";

async function roundTrip() {
  // From configuration, as an app does: the key comes from an env var named in the URI.
  process.env.ENVELOPE_SMOKE_AES_KEY = randomBytes(32).toString("hex");
  const envelope = await createEnvelope({ encrypt: "local-aes://env/ENVELOPE_SMOKE_AES_KEY" });
  const binary = await envelope.encrypt(plaintext, { context });
  check(Buffer.isBuffer(binary), "encrypt returns a Buffer by default");
  const text = await envelope.encrypt(plaintext, { context, output: "text" });
  check(typeof text === "string" && text.startsWith("ev1:"), "output: text gives an ev1: string");
  check(
    (await envelope.decrypt(binary, { context, as: "text" })) === plaintext,
    "binary round trip",
  );
  check((await envelope.decrypt(text, { context, as: "text" })) === plaintext, "text round trip");
  await rejectsWith(
    "ENVELOPE_DECRYPT_FAILED",
    () => envelope.decrypt(binary, { context: { ...context, id: "43" } }),
    "another row's context",
  );
  const tampered = Buffer.from(binary);
  tampered[tampered.length - 1] ^= 1;
  await rejectsWith(
    "ENVELOPE_DECRYPT_FAILED",
    () => envelope.decrypt(tampered, { context }),
    "flipped tag bit",
  );
  await rejectsWith(
    "ENVELOPE_BAD_FORMAT",
    () => envelope.decrypt(binary.subarray(0, 7), { context }),
    "truncated value",
  );
}

async function rewrap() {
  const oldKey = localAesProvider({ keys: randomBytes(32) });
  const newKey = localAesProvider({ keys: randomBytes(32) });
  const before = await new Envelope({ encrypt: oldKey }).encrypt(plaintext, {
    context,
    output: "text",
  });
  const rotated = new Envelope({ encrypt: newKey, decrypt: [oldKey] });
  const after = await rotated.rewrap(before, { context, verifyBody: true });
  const [a, b] = [decodeEnvelope(fromText(before)), decodeEnvelope(fromText(after))];
  sameBytes(a.body, b.body, "rewrap leaves the body byte-for-byte identical");
  check(
    b.entries.length === 1 && b.entries[0].keyRef === newKey.keyRef,
    "rewrapped under the new key",
  );
  const newOnly = new Envelope({ encrypt: newKey });
  check((await newOnly.decrypt(after, { context, as: "text" })) === plaintext, "new key opens it");
  await rejectsWith(
    "ENVELOPE_NO_MATCHING_KEY",
    () => newOnly.decrypt(before, { context }),
    "new key alone on the old value",
  );
}

async function unwrapCache() {
  const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
  const sealed = await envelope.encrypt(plaintext, { context });
  await envelope.decrypt(sealed, { context });
  await envelope.decrypt(sealed, { context });
  const stats = envelope.cacheStats();
  check(stats.hits >= 1, "second decrypt of a value hits the unwrap cache");
  envelope.clearCaches();
}

async function bulk() {
  // Rows of two fields under one data key each (the grouped, pipelined path), suite 0x03.
  const key = localAesProvider({ keys: randomBytes(32) });
  const envelope = new Envelope({ encrypt: key, suite: 3 });
  const items = [];
  for (let id = 0; id < 6; id++) {
    const materials = await envelope.generateDataKey();
    for (const column of ["email", "phone"]) {
      const ctx = { table: "users", column, id: String(id) };
      items.push({
        sealed: envelope.encryptWithDataKey(materials, `${column}-${id}`, { context: ctx }),
        context: ctx,
      });
    }
    materials.dataKey.fill(0);
  }
  items.push({ sealed: Buffer.from("not an envelope"), context });
  const reader = new Envelope({ encrypt: key }); // a cold cache: one unwrap per row
  const results = await reader.decryptMany(items, { concurrency: 2, as: "text" });
  check(
    results
      .slice(0, -1)
      .every((r, i) => r.ok && r.value === `${i % 2 ? "phone" : "email"}-${Math.floor(i / 2)}`),
    "decryptMany opens every row, in input order",
  );
  check(
    !results.at(-1).ok && results.at(-1).error.code === "ENVELOPE_UNSUPPORTED_VERSION",
    "a bad item fails alone",
  );
  check(envelope.inspect(items[0].sealed).suite === 3, "suite: 3 writes suite 0x03");
}

export const coreChecks = [
  ["core: encrypt / decrypt, context binding, tamper detection", roundTrip],
  ["core: rewrap to a new key, body unchanged", rewrap],
  ["core: unwrap cache", unwrapCache],
  ["core: decryptMany (grouped by data key), suite 0x03 writer", bulk],
];
