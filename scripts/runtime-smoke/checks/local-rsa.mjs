// @envelope/local-rsa: PEM files written by generateKeyPair, loaded lazily by core from a key
// URI, encrypt-only mode, and unwraps on the worker_threads pool.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, Envelope } from "@envelope/core";
import { generateKeyPair, localRsaProvider } from "@envelope/local-rsa";
import { check, rejectsWith } from "../assert.mjs";

const context = { table: "users", column: "phone", id: "9" };

async function withKeyDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), "envelope-smoke-rsa-"));
  try {
    // 2048 bits: the smallest allowed size keeps key generation quick on a loaded CI machine.
    const pair = await generateKeyPair({ dir, name: "smoke", modulusLength: 2048 });
    return await fn(pair);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fromUri() {
  await withKeyDir(async ({ privateKeyPath, publicKeyPath, keyRef }) => {
    // core imports @envelope/local-rsa itself, at run time, because the URI names it.
    const envelope = await createEnvelope({ encrypt: `local-rsa://${privateKeyPath}` });
    const sealed = await envelope.encrypt("+1 555 0100", { context, output: "text" });
    check(
      envelope.inspect(sealed).entries[0].keyRef === keyRef,
      "entry names the key's fingerprint",
    );
    check(
      (await envelope.decrypt(sealed, { context, as: "text" })) === "+1 555 0100",
      "RSA round trip",
    );
    const writeOnly = await createEnvelope({ encrypt: `local-rsa://${publicKeyPath}` });
    const fromWriter = await writeOnly.encrypt("+1 555 0101", { context });
    check(
      (await envelope.decrypt(fromWriter, { context, as: "text" })) === "+1 555 0101",
      "private key opens what the public key sealed",
    );
    await rejectsWith(
      "ENVELOPE_ENCRYPT_ONLY",
      () => writeOnly.decrypt(fromWriter, { context }),
      "public key alone",
    );
  });
}

async function threadPool() {
  return withKeyDir(async ({ privateKeyPath }) => {
    const provider = localRsaProvider({ keys: { path: privateKeyPath }, threads: 2 });
    try {
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const values = Array.from({ length: 8 }, (_, i) => `value-${i}`);
      const sealed = await Promise.all(values.map((v) => envelope.encrypt(v, { context })));
      const opened = await Promise.all(
        sealed.map((s) => envelope.decrypt(s, { context, as: "text" })),
      );
      check(
        opened.every((v, i) => v === values[i]),
        "every value opens through the pool",
      );
      const stats = provider.threadStats();
      const unwraps = stats.reduce((n, s) => n + s.unwraps, 0);
      check(unwraps === values.length, "every unwrap ran on a worker thread");
      return `${stats.length} worker thread(s), ${unwraps} unwraps`;
    } finally {
      await provider.close();
    }
  });
}

export const localRsaChecks = [
  ["local-rsa: key files, lazy load from a URI, encrypt-only mode", fromUri],
  ["local-rsa: unwraps on the worker_threads pool", threadPool],
];
