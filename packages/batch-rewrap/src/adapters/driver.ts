import { ConfigError } from "@envelope/core";

/**
 * Imports an optional database driver (`pg`, `mysql2`, `@electric-sql/pglite`: optional
 * peer dependencies, installed only by those who use that database). When the package is
 * missing, the error names it and the command that installs it; any other failure while
 * loading it is passed on unchanged.
 */
export async function loadDriver<T>(
  pkg: string,
  purpose: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    if (!isMissingPackage(cause, pkg)) throw cause;
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      `${purpose} needs the ${pkg} package, which is not installed. Install it next to @envelope/batch-rewrap: npm install ${pkg}`,
      { cause, details: { package: pkg } },
    );
  }
}

/** Node's "cannot find package" errors (ESM and CommonJS) for this package, not for one of its own imports. */
function isMissingPackage(error: unknown, pkg: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return false;
  // ESM names the package ('mysql2'); CommonJS the module path ('mysql2/promise').
  return typeof message === "string" && [`'${pkg}'`, `'${pkg}/`].some((s) => message.includes(s));
}
