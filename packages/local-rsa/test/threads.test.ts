import { execFileSync } from "node:child_process";
import { publicEncrypt, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { Worker } from "node:worker_threads";
import { Envelope, EnvelopeError, type WrappedKey } from "@envelope/core";
import { localRsaProvider, providerFactory } from "@envelope/local-rsa";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { OAEP } from "../src/constants.js";
import { ctx, type PemPair, pemBody, rsaPem, tempDir } from "./helpers.js";

let a: PemPair;
beforeAll(() => {
  a = rsaPem();
});

const request = { context: ctx };
const opened: { close(): Promise<void> }[] = [];
function provider(threads: number | "auto" | false) {
  const p = localRsaProvider({ keys: { pem: a.privatePem }, threads, env: {} });
  opened.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

async function wrapMany(n: number): Promise<{ keys: Buffer[]; entries: WrappedKey[] }> {
  const inline = provider(false);
  const keys = Array.from({ length: n }, () => randomBytes(32));
  const entries = await Promise.all(keys.map((k) => inline.wrap(k, request)));
  return { keys, entries };
}

describe("local-rsa worker threads", () => {
  it("unwraps to the same data keys as the inline path, on more than one thread", async () => {
    const { keys, entries } = await wrapMany(40);
    const inline = provider(false);
    const pooled = provider(2);
    expect(pooled.threads).toBe(2);
    const fromInline = await Promise.all(entries.map((e) => inline.unwrap(e, request)));
    const fromPool = await Promise.all(entries.map((e) => pooled.unwrap(e, request)));
    expect(fromPool.map((k) => Buffer.from(k).toString("hex"))).toEqual(
      keys.map((k) => k.toString("hex")),
    );
    expect(fromInline.map((k) => Buffer.from(k).toString("hex"))).toEqual(
      keys.map((k) => k.toString("hex")),
    );
    const stats = pooled.threadStats();
    // Thread ids as the workers report them: distinct, none the main thread (0).
    expect(new Set(stats.map((s) => s.threadId)).size).toBe(2);
    expect(stats.every((s) => s.threadId > 0 && s.unwraps > 0)).toBe(true);
    expect(stats.reduce((n, s) => n + s.unwraps, 0)).toBe(40);
    expect(inline.threadStats()).toEqual([]);
  });

  it("bulk Envelope.decrypt of distinct values (Promise.all) spreads over the threads", async () => {
    const pooled = provider(2);
    const envelope = new Envelope({ encrypt: pooled });
    const plain = Array.from({ length: 30 }, (_, i) => `user${i}@example.com`);
    const sealed = await Promise.all(plain.map((p) => envelope.encrypt(p, { context: ctx })));
    const reader = new Envelope({ encrypt: pooled, cache: false });
    const opened = await Promise.all(
      sealed.map((s) => reader.decrypt(s, { context: ctx, as: "text" })),
    );
    expect(opened).toEqual(plain);
    const stats = pooled.threadStats();
    expect(stats.length).toBe(2);
    expect(stats.every((s) => s.unwraps > 0)).toBe(true);
  });

  it("an entry that is a view into a larger buffer unwraps, and the caller's buffer stays intact", async () => {
    const { keys, entries } = await wrapMany(1);
    const big = Buffer.concat([Buffer.alloc(100, 7), Buffer.from(entries[0]!.wrapped)]);
    const view = big.subarray(100);
    const key = await provider(1).unwrap({ ...entries[0]!, wrapped: view }, request);
    expect(Buffer.from(key).equals(keys[0]!)).toBe(true);
    expect(big.byteLength).toBe(100 + entries[0]!.wrapped.length);
    expect(view.equals(Buffer.from(entries[0]!.wrapped))).toBe(true);
  });

  it('"auto" sizes the pool to the cores; threads come from config, URI and env', async () => {
    expect(provider("auto").threads).toBe(availableParallelism());
    const fromEnv = localRsaProvider({
      keys: { pem: a.privatePem },
      env: { ENVELOPE_LOCAL_RSA_THREADS: "3" },
    });
    opened.push(fromEnv);
    expect(fromEnv.threads).toBe(3);
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, "k.pem");
      writeFileSync(path, a.privatePem, { mode: 0o600 });
      const viaUri = (await providerFactory.fromUri(
        `local-rsa://${path}?threads=2`,
        {},
      )) as ReturnType<typeof localRsaProvider>;
      opened.push(viaUri);
      expect(viaUri.threads).toBe(2);
      const viaConfig = (await providerFactory.fromConfig({
        provider: "local-rsa",
        path,
        threads: "auto",
      })) as ReturnType<typeof localRsaProvider>;
      opened.push(viaConfig);
      expect(viaConfig.threads).toBe(availableParallelism());
      // Without threads in the config, the env given to the factory decides.
      const configEnv = (await providerFactory.fromConfig(
        { provider: "local-rsa", path },
        { ENVELOPE_LOCAL_RSA_THREADS: "1" },
      )) as ReturnType<typeof localRsaProvider>;
      opened.push(configEnv);
      expect(configEnv.threads).toBe(1);
      await expect(
        providerFactory.fromUri(`local-rsa://${path}?threads=many`, {}),
      ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    } finally {
      cleanup();
    }
    expect(() => localRsaProvider({ keys: { pem: a.privatePem }, threads: 1000 })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
    expect(localRsaProvider({ keys: { pem: a.privatePem }, env: {} }).threads).toBe(0);
  });

  it("a corrupted entry fails with the inline path's typed error, with no key material", async () => {
    const { entries } = await wrapMany(1);
    const bad = { ...entries[0]!, wrapped: Uint8Array.from(entries[0]!.wrapped) };
    bad.wrapped[10]! ^= 1;
    const inlineError = await provider(false)
      .unwrap(bad, request)
      .catch((e: unknown) => e);
    const poolError = await provider(2)
      .unwrap(bad, request)
      .catch((e: unknown) => e);
    expect(EnvelopeError.isInstance(poolError)).toBe(true);
    expect(poolError).toMatchObject({
      code: (inlineError as EnvelopeError).code,
      message: (inlineError as EnvelopeError).message,
    });
    expect((poolError as EnvelopeError).code).toBe("ENVELOPE_UNWRAP_FAILED");
    const shown = `${inspect(poolError, { depth: 5 })} ${JSON.stringify(poolError)} ${String((poolError as Error).cause)}`;
    for (const line of pemBody(a.privatePem)) expect(shown).not.toContain(line);
    // A wrong-length data key (valid OAEP, 16 bytes) is refused like inline, and not returned.
    const short: WrappedKey = {
      ...entries[0]!,
      wrapped: publicEncrypt({ key: a.publicPem, ...OAEP }, randomBytes(16)),
    };
    await expect(provider(1).unwrap(short, request)).rejects.toMatchObject({
      code: "ENVELOPE_UNWRAP_FAILED",
    });
  });

  it("unwraps asked for together go to a thread as one message; each caller gets its own key or error", async () => {
    const b = rsaPem();
    const both = localRsaProvider({
      keys: [{ pem: a.privatePem }, { pem: b.privatePem }],
      threads: 1,
      env: {},
    });
    opened.push(both);
    const inlineB = localRsaProvider({ keys: { pem: b.privatePem }, env: {} });
    const { keys: keysA, entries: entriesA } = await wrapMany(15);
    const keysB = Array.from({ length: 15 }, () => randomBytes(32));
    const entriesB = await Promise.all(keysB.map((k) => inlineB.wrap(k, request)));
    // Interleaved keys; every fifth entry corrupted.
    const keys = keysA.flatMap((k, i) => [k, keysB[i]!]);
    const entries = entriesA
      .flatMap((e, i) => [e, entriesB[i]!])
      .map((e, i) => {
        if (i % 5 !== 4) return e;
        const wrapped = Uint8Array.from(e.wrapped);
        wrapped[7]! ^= 1;
        return { ...e, wrapped };
      });
    const sent = vi.spyOn(Worker.prototype, "postMessage");
    try {
      const settled = await Promise.all(
        entries.map((e) => both.unwrap(e, request).catch((x: unknown) => x)),
      );
      settled.forEach((r, i) => {
        if (i % 5 === 4) expect(r).toMatchObject({ code: "ENVELOPE_UNWRAP_FAILED" });
        else expect(Buffer.from(r as Uint8Array).equals(keys[i]!)).toBe(true);
      });
      // 30 unwraps asked for in one turn of the event loop: one message to the thread.
      expect(sent.mock.calls.length).toBe(1);
    } finally {
      sent.mockRestore();
    }
    expect(both.threadStats()).toEqual([expect.objectContaining({ unwraps: 24 })]);
  });

  it("close() terminates the threads; pending unwraps fail typed; later unwraps run inline", async () => {
    const { keys, entries } = await wrapMany(20);
    const pooled = provider(2);
    await Promise.all(entries.slice(0, 4).map((e) => pooled.unwrap(e, request)));
    expect(pooled.threadStats().length).toBe(2);
    const pending = entries.map((e) => pooled.unwrap(e, request).catch((x: unknown) => x));
    await pooled.close();
    const settled = await Promise.all(pending);
    const failed = settled.filter((x) => !(x instanceof Buffer));
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f).toMatchObject({ code: "ENVELOPE_KMS_UNAVAILABLE" });
    // After close: inline, same result, no new thread.
    const after = await pooled.unwrap(entries[0]!, request);
    expect(Buffer.from(after).equals(keys[0]!)).toBe(true);
    expect(pooled.threadStats().length).toBe(2);
    await pooled.close();
  });

  it("a process using the pool exits on its own, without close()", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const { dir, cleanup } = tempDir();
    try {
      const keyPath = join(dir, "k.pem");
      writeFileSync(keyPath, a.privatePem, { mode: 0o600 });
      const script = join(dir, "run.mts");
      writeFileSync(
        script,
        `import { randomBytes } from "node:crypto";
import { localRsaProvider } from ${JSON.stringify(join(root, "packages/local-rsa/src/index.ts"))};
const p = localRsaProvider({ keys: { path: ${JSON.stringify(keyPath)} }, threads: 2, env: {} });
const r = { context: {} };
const keys = Array.from({ length: 8 }, () => randomBytes(32));
const entries = await Promise.all(keys.map((k) => p.wrap(k, r)));
// Top-level await on pooled work: the threads hold the process only while busy.
const out = await Promise.all(entries.map((e) => p.unwrap(e, r)));
if (!out.every((k, i) => k.equals(keys[i]))) process.exit(3);
process.stdout.write("threads=" + p.threadStats().length + "\\n");
`,
      );
      // The same runtime as this test: Bun runs TypeScript itself; Deno once told to map the
      // sources' ".js" imports to ".ts" and to take packages from the pnpm node_modules as
      // they are; Node through tsx.
      const args =
        "Deno" in globalThis
          ? ["run", "-A", "--sloppy-imports", "--node-modules-dir=manual", script]
          : process.versions.bun
            ? [script]
            : ["--import", "tsx", script];
      const out = execFileSync(process.execPath, args, {
        cwd: root,
        timeout: 20_000,
        encoding: "utf8",
      });
      expect(out).toBe("threads=2\n");
    } finally {
      cleanup();
    }
  });
});
