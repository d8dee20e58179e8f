import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope } from "@envelope/core";
import { checkKeyFileMode } from "@envelope/core/internal";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// The tests run as root: the check reads the stat mode bits, so it still applies.
const dir = mkdtempSync(join(tmpdir(), "envelope-key-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let warnings: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warnings = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
});
afterEach(() => warnings.mockRestore());

const keyFile = (mode: number): string => {
  const path = join(dir, `aes-${++n}.key`);
  writeFileSync(path, randomBytes(32).toString("hex"));
  chmodSync(path, mode);
  return path;
};
const emitted = () =>
  warnings.mock.calls.filter(
    (c) => (c[1] as { code?: string } | undefined)?.code === "ENVELOPE_KEY_FILE_PERMISSIONS",
  );

describe("local-aes key file permissions", () => {
  it("0600: no warning", async () => {
    await createEnvelope({ encrypt: `local-aes://${keyFile(0o600)}` }, {});
    expect(emitted()).toEqual([]);
  });

  it.each([0o644, 0o640].map((mode) => [`0${mode.toString(8)}`, mode] as const))(
    "mode %s: one warning per file, the key still loads",
    async (_label, mode) => {
      const path = keyFile(mode);
      const envelope = await createEnvelope({ encrypt: `local-aes://${path}` }, {});
      await createEnvelope({ encrypt: `local-aes://${path}` }, {});
      expect((await envelope.decrypt(await envelope.encrypt("x"))).toString()).toBe("x");
      expect(emitted()).toHaveLength(1);
      expect(String(emitted()[0]![0])).toContain(`local-aes: key file ${path} is accessible to`);
    },
  );

  it.each([0o644, 0o640].map((mode) => [`0${mode.toString(8)}`, mode] as const))(
    "ENVELOPE_STRICT_KEY_FILES=1 refuses mode %s with ENVELOPE_BAD_KEY",
    async (_label, mode) => {
      const path = keyFile(mode);
      await expect(
        createEnvelope({ encrypt: `local-aes://${path}` }, { ENVELOPE_STRICT_KEY_FILES: "1" }),
      ).rejects.toMatchObject({ code: "ENVELOPE_BAD_KEY" });
      await expect(
        createEnvelope(
          { encrypt: `local-aes://${keyFile(0o600)}` },
          { ENVELOPE_STRICT_KEY_FILES: "1" },
        ),
      ).resolves.toBeDefined();
    },
  );
});

describe("checkKeyFileMode", () => {
  const check = { provider: "p", what: "key file", strict: true };

  it("skips Windows, where mode bits do not describe access", () => {
    expect(() =>
      checkKeyFileMode("C:\\keys\\k.pem", 0o100666, { ...check, platform: "win32" }),
    ).not.toThrow();
    expect(() => checkKeyFileMode("/k.pem", 0o100666, { ...check, platform: "linux" })).toThrow(
      /accessible to group and others \(mode 0666\)/,
    );
  });

  it.each([0o600, 0o400, 0o700].map((mode) => [`0${mode.toString(8)}`, mode] as const))(
    "accepts owner-only mode %s",
    (_label, mode) => {
      expect(() => checkKeyFileMode("/k.pem", 0o100000 | mode, check)).not.toThrow();
    },
  );
});
