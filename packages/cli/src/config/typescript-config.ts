import { pathToFileURL } from "node:url";
import { ConfigError } from "@envelope/core";

/** tsx's programmatic import, scoped to one file and its imports. */
type TsImport = (specifier: string, options: { parentURL: string }) => Promise<unknown>;

/**
 * tsx, loaded only for an `envelope.config.ts` (Node 20 has no type stripping). It is an
 * optional peer dependency: it brings esbuild and its install script, which a user with a
 * JSON or JavaScript config should not have to install. `load` is for tests.
 */
export async function loadTsx(
  path: string,
  load: () => Promise<{ tsImport: TsImport }> = () =>
    import("tsx/esm/api") as Promise<{ tsImport: TsImport }>,
): Promise<TsImport> {
  try {
    return (await load()).tsImport;
  } catch (cause) {
    if (!isMissingPackage(cause, "tsx")) throw cause;
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      `Config file ${path} is TypeScript, which needs the tsx package to load, and tsx is not installed. Install it where the envelope command is installed (npm install tsx, or npm install -g tsx for a global envelope), or write the config as envelope.config.json or .mjs.`,
      { cause, details: { field: "config", package: "tsx" } },
    );
  }
}

/** Imports a TypeScript config file through tsx; nothing else is hooked. */
export async function importTs(path: string, tsImport: TsImport): Promise<unknown> {
  const url = pathToFileURL(path).href;
  return tsImport(url, { parentURL: url });
}

/** Node's "cannot find package" errors (ESM and CommonJS) for `pkg` itself, not for one of its imports. */
function isMissingPackage(error: unknown, pkg: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return false;
  // ESM names the package ('tsx'); CommonJS the module path ('tsx/esm/api').
  return typeof message === "string" && [`'${pkg}'`, `'${pkg}/`].some((s) => message.includes(s));
}
