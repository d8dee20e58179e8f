/**
 * @envelope/cli — the `envelope` command as a library: run it in-process with `main`.
 */
export { DEFAULT_ROW_TEMPLATE, parsePairs, templateContext } from "./config/encryption-context.js";
export {
  CONFIG_FILES,
  type ConfigFlags,
  type LoadedConfig,
  loadConfig,
  type RotationSettings,
} from "./config/load.js";
export { EXIT_CODES, exitCodeFor } from "./exit-codes.js";
export { type CliIo, processIo } from "./io.js";
export { buildProgram, main } from "./program.js";
