import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createEnvelope, resolveKey } from "@envelope/core";
import {
  type localRsaProvider,
  parseLocalRsaUri,
  providerFactory,
  rsaKeyRef,
} from "@envelope/local-rsa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ctx, type PemPair, rsaPem, tempDir } from "./helpers.js";

const tmp = tempDir();
let plain: PemPair;
let locked: PemPair;
let plainFile: string;
let lockedFile: string;
let passFile: string;
beforeAll(() => {
  plain = rsaPem();
  locked = rsaPem(2048, "pw 123");
  plainFile = join(tmp.dir, "plain key.pem");
  lockedFile = join(tmp.dir, "locked.pem");
  passFile = join(tmp.dir, "pass");
  writeFileSync(plainFile, plain.privatePem);
  writeFileSync(lockedFile, locked.privatePem);
  writeFileSync(passFile, "pw 123\n");
});
afterAll(() => tmp.cleanup());

describe("parseLocalRsaUri", () => {
  it.each([
    ["local-rsa:///run/secrets/enc_key.pem", { path: "/run/secrets/enc_key.pem" }],
    ["local-rsa:///run/secrets", { path: "/run/secrets" }],
    ["local-rsa:///keys/my%20key.pem", { path: "/keys/my key.pem" }],
    ["local-rsa://env/ENVELOPE_RSA_KEY", { env: "ENVELOPE_RSA_KEY" }],
    ["local-rsa:///k.pem?passphrase-env=PW", { path: "/k.pem", passphraseEnv: "PW" }],
    [
      "local-rsa://env/K?passphrase-file=/run/secrets/pw",
      { env: "K", passphraseFile: "/run/secrets/pw" },
    ],
  ])("%s", (uri, expected) => {
    expect(parseLocalRsaUri(uri)).toEqual(expected);
  });

  it.each([
    ["aws-kms://x", /must start with local-rsa:\/\//],
    ["local-rsa://relative/key.pem", /"relative" is not a location/],
    ["local-rsa://", /is not a location/],
    ["local-rsa:///", /path is empty/],
    ["local-rsa://env/", /environment variable name/],
    ["local-rsa://env/BAD-NAME", /environment variable name/],
    ["local-rsa:///k.pem?passphrase=hunter2", /never put a passphrase in a URI/],
    ["local-rsa:///k.pem?mode=x", /unknown query parameter "mode"/],
    ["local-rsa:///k.pem?passphrase-env=A&passphrase-file=/b", /one passphrase source/],
    ["local-rsa:///k.pem?passphrase-file=rel/p", /absolute path/],
    ["local-rsa:///bad%zzescape", /%-escape/],
  ])("rejects %s", (uri, message) => {
    let error: unknown;
    try {
      parseLocalRsaUri(uri);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ name: "ConfigError", code: "ENVELOPE_BAD_CONFIG" });
    const text = (error as Error).message;
    expect(text).toMatch(message);
    expect(text).toContain("local-rsa:///absolute/path/key.pem");
    expect(text).toContain("local-rsa://env/VAR_NAME");
    expect(text).not.toContain("hunter2");
  });
});

describe("providerFactory", () => {
  it("has the local-rsa scheme and builds from URIs", async () => {
    expect(providerFactory.scheme).toBe("local-rsa");
    const p = await providerFactory.fromUri(`local-rsa://${encodeURI(plainFile)}`);
    expect(p.keyRef).toBe(rsaKeyRef(plain.publicPem));
    const fromEnv = await providerFactory.fromUri("local-rsa://env/K?passphrase-env=PW", {
      K: locked.privatePem.replace(/\n/g, "\\n"),
      PW: "pw 123",
    });
    expect(fromEnv.keyRef).toBe(rsaKeyRef(locked.publicPem));
    const withFile = await providerFactory.fromUri(
      `local-rsa://${lockedFile}?passphrase-file=${passFile}`,
    );
    expect(withFile.keyRef).toBe(rsaKeyRef(locked.publicPem));
  });

  it("builds from config: keys list, or one source inline", async () => {
    const listed = await providerFactory.fromConfig({
      provider: "local-rsa",
      keys: [{ pem: plain.privatePem }, { env: "OLD", passphraseEnv: "PW" }],
      env: { OLD: locked.privatePem, PW: "pw 123" },
    });
    expect(listed.keyRef).toBe(rsaKeyRef(plain.publicPem));
    expect((listed as ReturnType<typeof localRsaProvider>).keys).toHaveLength(2);
    const inline = await providerFactory.fromConfig({
      provider: "local-rsa",
      path: lockedFile,
      passphraseFile: passFile,
    });
    expect(inline.keyRef).toBe(rsaKeyRef(locked.publicPem));
    await expect(
      providerFactory.fromConfig({ provider: "local-rsa", file: plainFile }),
    ).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      message: expect.stringContaining('unknown field "file"'),
    });
    await expect(
      providerFactory.fromConfig({ provider: "local-rsa", keys: [], env: "X" }),
    ).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
  });

  it("createEnvelope loads @envelope/local-rsa lazily from a local-rsa:/// URI", async () => {
    const envelope = await createEnvelope({ encrypt: `local-rsa://${encodeURI(plainFile)}` });
    expect(envelope.describe().encrypt).toEqual([`local-rsa:${rsaKeyRef(plain.publicPem)}`]);
    const sealed = await envelope.encrypt("bob@example.com", { context: ctx, output: "text" });
    const byConfig = await createEnvelope(
      { encrypt: { provider: "local-rsa", keys: [{ env: "RSA_KEY" }] } },
      {},
    ).catch((e) => e);
    // fromConfig reads process.env (core passes its env argument to fromUri only); RSA_KEY is unset there.
    expect(byConfig).toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    const reader = await createEnvelope(
      { encrypt: "local-rsa://env/RSA_KEY" },
      { RSA_KEY: plain.privatePem },
    );
    expect(await reader.decrypt(sealed, { context: ctx, as: "text" })).toBe("bob@example.com");
  });

  it("createEnvelope reports a bad URI with the field and the expected shapes", async () => {
    await expect(createEnvelope({ encrypt: "local-rsa://keys/k.pem" })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      message: expect.stringMatching(/^encrypt\[0\].*local-rsa:\/\/\/absolute\/path/),
    });
    await expect(
      resolveKey("local-rsa:///nonexistent/dir/key.pem", "decrypt[0]"),
    ).rejects.toMatchObject({
      code: "ENVELOPE_BAD_KEY",
      message: expect.stringContaining("does not exist"),
    });
  });
});
