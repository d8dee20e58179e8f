import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadLegacyKey } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";

// A legacy static key file is as secret as a master key: the same permission rule.
describe("legacy key file permissions", () => {
  const key = randomBytes(32);
  const file = (mode: number) => {
    const path = join(mkdtempSync(join(tmpdir(), "legacy-key-")), "legacy.key");
    writeFileSync(path, key.toString("hex"), { mode });
    chmodSync(path, mode);
    return path;
  };

  it("loads a 0600 file without a warning", () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? "");
    process.on("warning", onWarning);
    try {
      expect(loadLegacyKey({ file: file(0o600) }, {}).equals(key)).toBe(true);
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("ENVELOPE_KEY_FILE_PERMISSIONS");
  });

  it("warns about a 0644 file and refuses it with ENVELOPE_STRICT_KEY_FILES=1", async () => {
    const path = file(0o644);
    const warnings: (Error & { code?: string })[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      expect(loadLegacyKey({ file: path }, {}).equals(key)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    const ours = warnings.filter((w) => w.code === "ENVELOPE_KEY_FILE_PERMISSIONS");
    expect(ours).toHaveLength(1);
    expect(ours[0]!.message).not.toContain(key.toString("hex"));

    let error: (Error & { code?: string }) | undefined;
    try {
      loadLegacyKey({ file: path }, { ENVELOPE_STRICT_KEY_FILES: "1" });
    } catch (e) {
      error = e as Error & { code?: string };
    }
    expect(error?.code).toBe("ENVELOPE_BAD_KEY");
    expect(error?.message).toContain("chmod 600");
    expect(error?.message).not.toContain(key.toString("hex"));
  });
});
