import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { optionsFromUri } from "@envelope/vault";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// The tests run as root: the check reads the stat mode bits, so it still applies.
const dir = mkdtempSync(join(tmpdir(), "envelope-vault-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let warnings: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warnings = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
});
afterEach(() => warnings.mockRestore());

const URI = "vault-transit://vault:8200/transit/keys/pii";
const clientKey = (mode: number) => {
  const path = join(dir, `client-${++n}.key`);
  writeFileSync(path, "-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n");
  chmodSync(path, mode);
  return path;
};
const emitted = () =>
  warnings.mock.calls.filter(
    (c) => (c[1] as { code?: string } | undefined)?.code === "ENVELOPE_KEY_FILE_PERMISSIONS",
  );

describe("VAULT_CLIENT_KEY (mTLS private key) file permissions", () => {
  it("0600: read silently", () => {
    const { options } = optionsFromUri(URI, {
      VAULT_TOKEN: "t",
      VAULT_CLIENT_KEY: clientKey(0o600),
    });
    expect(options.tls?.key).toBeDefined();
    expect(emitted()).toEqual([]);
  });

  it.each([
    ["0644", 0o644],
    ["0640", 0o640],
  ])(
    "mode %s: one warning, still read; refused with ENVELOPE_BAD_KEY when strict",
    (_label, mode) => {
      const path = clientKey(mode);
      optionsFromUri(URI, { VAULT_TOKEN: "t", VAULT_CLIENT_KEY: path });
      optionsFromUri(URI, { VAULT_TOKEN: "t", VAULT_CLIENT_KEY: path });
      expect(emitted()).toHaveLength(1);
      expect(String(emitted()[0]![0])).toContain(`TLS client key file (VAULT_CLIENT_KEY) ${path}`);
      expect(() =>
        optionsFromUri(URI, {
          VAULT_TOKEN: "t",
          VAULT_CLIENT_KEY: path,
          ENVELOPE_STRICT_KEY_FILES: "1",
        }),
      ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_KEY" }));
    },
  );
});
