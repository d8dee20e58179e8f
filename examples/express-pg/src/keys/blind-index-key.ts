import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { blindIndexKeysFrom } from "@envelope/records";

type Env = Readonly<Record<string, string | undefined>>;

export const BLIND_INDEX_KEY_FILE = "blind-index.key";

/**
 * The blind-index key(s): BLIND_INDEX_KEY (comma-separated, current first) when set,
 * otherwise `<keysDir>/blind-index.key`, generated (32 random bytes, hex, mode 0600) on
 * first start. A secret of its own, apart from the data keys and the master key.
 *
 * @example
 * const blindIndex = createBlindIndexer({ keys: await blindIndexKeys(process.env, keysDir) });
 */
export async function blindIndexKeys(env: Env, keysDir: string): Promise<string[]> {
  if (env.BLIND_INDEX_KEY?.trim()) {
    return blindIndexKeysFrom({ env: "BLIND_INDEX_KEY", environment: env });
  }
  const file = join(keysDir, BLIND_INDEX_KEY_FILE);
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  try {
    // "wx": never replace an existing key (every index in the table depends on it).
    await writeFile(
      file,
      `# blind-index key for examples/express-pg (current first)\n${randomBytes(32).toString("hex")}\n`,
      { flag: "wx", mode: 0o600 },
    );
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error;
  }
  return blindIndexKeysFrom({ file });
}
