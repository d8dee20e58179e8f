// The bundler inlines this one field at build time, so `envelope --version` always says
// which package is installed (it was a hard-coded string that nobody bumped).
import { version } from "../package.json";

/** The version of @envelope/cli, from its package.json. */
export const CLI_VERSION: string = version;
