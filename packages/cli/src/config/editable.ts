import { existsSync } from "node:fs";
import { ConfigError } from "@envelope/core";
import type { GlobalFlags } from "../command-context.js";
import { CONFIG_FILES, configPath } from "./load.js";

/**
 * The JSON config file that `rotate` and `retire` edit: `--config`, or the file every other
 * command reads (the first envelope.config.{json,mjs,js,ts} in `cwd`). Refuses, before
 * anything is written, each case where the edit would miss the keys in use:
 * - no config file (a rotate run in the wrong folder would start a config of its own);
 * - a JS or TS config (an envelope.config.json written beside it would be read first,
 *   without its keys);
 * - keys from ENVELOPE_ENCRYPT_KEYS / ENVELOPE_DECRYPT_KEYS / --key / --decrypt-key, which
 *   override the file's (the edit would not change what encrypts, or would act on keys
 *   that are not the file's).
 */
export function editableConfig(
  command: "rotate" | "retire",
  flags: GlobalFlags,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): string {
  const path = configPath(flags, cwd);
  const refuse = (message: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `${command}: ${message} Nothing was changed.`, {
      details: { field: "config" },
    });
  if (path === undefined)
    throw refuse(
      `no config file (${CONFIG_FILES.join(", ")}) in ${cwd}. Run it in the folder of the config it should edit, or pass --config <file>; a first key and config come from \`envelope keygen --init\`.`,
    );
  if (!existsSync(path)) throw refuse(`config file ${path} does not exist.`);
  if (!path.endsWith(".json"))
    throw refuse(
      `${path} is not a JSON config, and ${command} edits JSON configs only. Edit its keys by hand, then check with \`envelope status --check\`.`,
    );
  const overrides = [
    env.ENVELOPE_ENCRYPT_KEYS ? "ENVELOPE_ENCRYPT_KEYS" : "",
    env.ENVELOPE_DECRYPT_KEYS ? "ENVELOPE_DECRYPT_KEYS" : "",
    flags.key?.length ? "--key" : "",
    flags.decryptKey?.length ? "--decrypt-key" : "",
  ].filter(Boolean);
  if (overrides.length > 0)
    throw refuse(
      `${command} edits ${path}, but ${overrides.join(", ")} override its keys. Unset them and run it again, or change the keys where they are set.`,
    );
  return path;
}
