import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, createEnvelope, Envelope } from "@envelope/core";
import { localRsaProvider, providerFactory } from "@envelope/local-rsa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type PemPair, rsaPem, tempDir } from "./helpers.js";

// The tests run as root: the checks read the stat mode bits, so they still apply.
let key: PemPair;
let locked: PemPair;
let dir: string;
let cleanup: () => void;
let n = 0;
let warnings: ReturnType<typeof vi.spyOn>;

beforeAll(() => {
  key = rsaPem();
  locked = rsaPem(2048, "pass-phrase");
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());
beforeEach(() => {
  warnings = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
});
afterEach(() => {
  warnings.mockRestore();
});

/** A new file (unique name: warnings are once per file) with `mode`. */
function file(content: string, mode: number, name = `key-${++n}.pem`): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

/** The ENVELOPE_KEY_FILE_PERMISSIONS warnings emitted so far, as [message, options]. */
const permissionWarnings = () =>
  warnings.mock.calls.filter(
    (call) => (call[1] as { code?: string } | undefined)?.code === "ENVELOPE_KEY_FILE_PERMISSIONS",
  );

const noEnv = {}; // no ENVELOPE_STRICT_KEY_FILES from the real environment

describe("private key file permissions (local-rsa)", () => {
  it("0600: loads silently", () => {
    const path = file(key.privatePem, 0o600);
    localRsaProvider({ keys: { path }, env: noEnv });
    expect(permissionWarnings()).toEqual([]);
  });

  it.each([
    ["0644", 0o644, "group and others"],
    ["0640", 0o640, "group"],
    ["0604", 0o604, "others"],
  ] as const)(
    "mode %s: loads with ONE SecurityWarning per file, naming who and the fix",
    (octal, mode, who) => {
      const path = file(key.privatePem, mode);
      const provider = localRsaProvider({ keys: { path }, env: noEnv });
      expect(provider.keys[0]!.kind).toBe("private");
      localRsaProvider({ keys: { path }, env: noEnv }); // same file again: no second warning
      const emitted = permissionWarnings();
      expect(emitted).toHaveLength(1);
      const [message, options] = emitted[0]!;
      expect(options).toEqual({ type: "SecurityWarning", code: "ENVELOPE_KEY_FILE_PERMISSIONS" });
      expect(message).toContain(`private key file ${path} is accessible to ${who} (mode ${octal})`);
      expect(message).toContain(`chmod 600 ${path}`);
      expect(message).toContain("ENVELOPE_STRICT_KEY_FILES=1");
      expect(String(message)).not.toContain("PRIVATE KEY-----");
    },
  );

  it("a world-readable PUBLIC key file is fine (encrypt-only services)", () => {
    const path = file(key.publicPem, 0o644);
    localRsaProvider({ keys: { path }, env: noEnv });
    expect(permissionWarnings()).toEqual([]);
  });

  it("a directory source checks each private key file in it", () => {
    const sub = join(dir, `dir-${++n}`);
    mkdirSync(sub);
    file(key.privatePem, 0o600, `dir-${n}/a.pem`);
    const open = file(rsaPem().privatePem, 0o640, `dir-${n}/b.pem`);
    const provider = localRsaProvider({ keys: { path: sub }, env: noEnv });
    expect(provider.keys).toHaveLength(2);
    expect(permissionWarnings()).toHaveLength(1);
    expect(String(permissionWarnings()[0]![0])).toContain(open);
  });

  it("a passphrase file is checked like a key file", () => {
    const path = file(locked.privatePem, 0o600);
    const pass = file("pass-phrase\n", 0o644, `pass-${n}`);
    localRsaProvider({ keys: { path, passphraseFile: pass }, env: noEnv });
    expect(permissionWarnings()).toHaveLength(1);
    expect(String(permissionWarnings()[0]![0])).toContain(`passphrase file ${pass}`);
  });
});

describe("strict key files: refuse with ConfigError ENVELOPE_BAD_KEY", () => {
  const refusal = (run: () => unknown): ConfigError => {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error("expected a refusal");
  };

  it.each([0o644, 0o640].map((mode) => [`0${mode.toString(8)}`, mode] as const))(
    "strictKeyFiles: true refuses mode %s, before the key is used",
    (_label, mode) => {
      const path = file(key.privatePem, mode);
      const error = refusal(() =>
        localRsaProvider({ keys: { path }, strictKeyFiles: true, env: noEnv }),
      );
      expect(error.code).toBe("ENVELOPE_BAD_KEY");
      expect(error.message).toContain(`private key file ${path} is accessible to`);
      expect(error.message).toContain("Refused because strict key-file checks are on");
      expect(error.details).toMatchObject({ mode: `0${mode.toString(8)}` });
      expect(permissionWarnings()).toEqual([]);
    },
  );

  it("strictKeyFiles: true accepts 0600 and a world-readable public key", () => {
    const provider = localRsaProvider({
      keys: [{ path: file(key.privatePem, 0o600) }, { path: file(rsaPem().publicPem, 0o644) }],
      strictKeyFiles: true,
      env: noEnv,
    });
    expect(provider.keys.map((k) => k.kind)).toEqual(["private", "public"]);
  });

  it("ENVELOPE_STRICT_KEY_FILES=1 in the environment refuses; strictKeyFiles: false overrides it", () => {
    const path = file(key.privatePem, 0o640);
    const env = { ENVELOPE_STRICT_KEY_FILES: "1" };
    expect(refusal(() => localRsaProvider({ keys: { path }, env })).code).toBe("ENVELOPE_BAD_KEY");
    expect(localRsaProvider({ keys: { path }, env, strictKeyFiles: false }).keys).toHaveLength(1);
  });

  it("strict passphrase file", () => {
    const path = file(locked.privatePem, 0o600);
    const pass = file("pass-phrase\n", 0o640, `pass-${n}`);
    const error = refusal(() =>
      localRsaProvider({ keys: { path, passphraseFile: pass }, strictKeyFiles: true, env: noEnv }),
    );
    expect(error.message).toContain(`passphrase file ${pass}`);
  });

  it("through a key URI (env) and through config ({ strictKeyFiles })", async () => {
    const path = file(key.privatePem, 0o644);
    await expect(
      providerFactory.fromUri(`local-rsa://${path}`, { ENVELOPE_STRICT_KEY_FILES: "true" }),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_KEY" });
    await expect(
      createEnvelope({ encrypt: { provider: "local-rsa", path, strictKeyFiles: true } }, noEnv),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_KEY" });
    // Without strict, the same file works end to end (after a warning).
    const envelope = new Envelope({
      encrypt: await providerFactory.fromUri(`local-rsa://${path}`, noEnv),
    });
    expect((await envelope.decrypt(await envelope.encrypt("x"))).toString()).toBe("x");
  });

  it("strictKeyFiles must be a boolean", () => {
    const path = file(key.privatePem, 0o600);
    const error = refusal(() =>
      localRsaProvider({ keys: { path }, strictKeyFiles: "yes" as unknown as boolean }),
    );
    expect(error.code).toBe("ENVELOPE_BAD_CONFIG");
  });
});
