import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";

/** Reads a JSON config file as an object (empty when missing). */
export function readJsonConfig(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
}

/**
 * Writes JSON atomically (temp file in the same folder + rename), keeping the file's mode
 * (default 0600): readers see the old file or the new one, never half of one. A failed
 * write leaves the old file as it was and removes the temp file.
 */
export function writeJsonConfig(path: string, value: unknown): void {
  let mode = 0o600;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {}
  const temp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`, { mode });
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
