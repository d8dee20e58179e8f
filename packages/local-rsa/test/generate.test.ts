import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Envelope, redactUri } from "@envelope/core";
import { generateKeyPair, localRsaProvider, rsaKeyRef } from "@envelope/local-rsa";
import { afterAll, describe, expect, it, vi } from "vitest";
import { ctx, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const mode = (path: string) => statSync(path).mode & 0o777;

describe("generateKeyPair", () => {
  it("defaults: 3072-bit, timestamped name, 0600 private key, 0700 new dir, loadable", async () => {
    const dir = join(tmp.dir, "fresh", "keys");
    const pair = await generateKeyPair({ dir });
    expect(pair.privateKeyPath).toMatch(/\/envelope-rsa-\d{8}-\d{6}-\d{3}-[0-9a-f]{6}\.pem$/);
    // Messages and the CLI show key URIs through redactUri, which hides a path segment of
    // 40+ characters as a possible key: a default name stays readable, so `envelope rotate`
    // can tell the new key from the old one.
    const uri = `local-rsa://${pair.privateKeyPath}`;
    expect(redactUri(uri)).toBe(uri);
    expect(pair.publicKeyPath).toBe(pair.privateKeyPath.replace(/\.pem$/, ".pub.pem"));
    expect(mode(dir)).toBe(0o700);
    expect(mode(pair.privateKeyPath)).toBe(0o600);
    expect(mode(pair.publicKeyPath)).toBe(0o644);
    expect(readFileSync(pair.privateKeyPath, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(pair.publicKeyPath, "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(pair.keyRef).toBe(rsaKeyRef(readFileSync(pair.publicKeyPath, "utf8")));

    const provider = localRsaProvider({ keys: { path: pair.privateKeyPath } });
    expect(provider.keys).toEqual([{ keyRef: pair.keyRef, kind: "private", modulusLength: 3072 }]);
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("hi", { context: ctx });
    expect(await envelope.decrypt(sealed, { context: ctx, as: "text" })).toBe("hi");
    expect(envelope.inspect(sealed).entries[0]!.wrappedBytes).toBe(384);
  });

  it("default names are unique within the same millisecond and sort by creation time", async () => {
    const dir = join(tmp.dir, "same-instant");
    vi.useFakeTimers({ toFake: ["Date"], now: Date.parse("2026-01-02T03:04:05.678Z") });
    try {
      const pairs = [];
      for (let i = 0; i < 3; i++) pairs.push(await generateKeyPair({ dir, modulusLength: 2048 }));
      const names = pairs.map((p) => p.privateKeyPath);
      expect(new Set(names).size).toBe(3);
      for (const name of names) expect(name).toContain("envelope-rsa-20260102-030405-678-");
      vi.setSystemTime(Date.parse("2026-01-02T03:04:05.679Z"));
      const later = await generateKeyPair({ dir, modulusLength: 2048 });
      expect([...names, later.privateKeyPath].sort().at(-1)).toBe(later.privateKeyPath);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a passphrase encrypts the private key (PKCS#8, aes-256-cbc)", async () => {
    const pair = await generateKeyPair({
      dir: tmp.dir,
      name: "locked",
      modulusLength: 2048,
      passphrase: "s3cret",
    });
    expect(readFileSync(pair.privateKeyPath, "utf8")).toMatch(
      /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/,
    );
    expect(mode(pair.privateKeyPath)).toBe(0o600);
    expect(() => localRsaProvider({ keys: { path: pair.privateKeyPath } })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_KEY" }),
    );
    const provider = localRsaProvider({
      keys: { path: pair.privateKeyPath, passphrase: "s3cret" },
    });
    expect(provider.keyRef).toBe(pair.keyRef);
  });

  it("never overwrites an existing key file, and leaves no half-written pair", async () => {
    const first = await generateKeyPair({ dir: tmp.dir, name: "keep", modulusLength: 2048 });
    const before = readFileSync(first.privateKeyPath);
    await expect(
      generateKeyPair({ dir: tmp.dir, name: "keep", modulusLength: 2048 }),
    ).rejects.toMatchObject({
      name: "ConfigError",
      code: "ENVELOPE_BAD_CONFIG",
      message: expect.stringContaining("never overwrites"),
    });
    expect(readFileSync(first.privateKeyPath).equals(before)).toBe(true);

    // Only the public file exists: the new private file is removed again.
    writeFileSync(join(tmp.dir, "half.pub.pem"), "placeholder");
    await expect(
      generateKeyPair({ dir: tmp.dir, name: "half", modulusLength: 2048 }),
    ).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
    expect(existsSync(join(tmp.dir, "half.pem"))).toBe(false);
    expect(readFileSync(join(tmp.dir, "half.pub.pem"), "utf8")).toBe("placeholder");
  });

  it.each([
    [{ dir: "" }, "dir"],
    [{ dir: "x", name: "../escape" }, "name"],
    [{ dir: "x", name: "key.pem" }, "name"],
    [{ dir: "x", modulusLength: 1024 }, "modulusLength"],
    [{ dir: "x", passphrase: "" }, "passphrase"],
  ])("rejects bad options %o", async (options, field) => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await expect(generateKeyPair(options as any)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { field },
    });
  });
});
