import { ConfigError } from "../errors.js";

/** `code` of the process warning emitted for a secret key file that group or others can access. */
export const KEY_FILE_WARNING_CODE = "ENVELOPE_KEY_FILE_PERMISSIONS";

/** Environment variable that turns that warning into a refusal (`1` or `true`). */
export const STRICT_KEY_FILES_ENV = "ENVELOPE_STRICT_KEY_FILES";

/** Where a secret key file's permissions are checked, and how strictly. */
export interface KeyFileCheck {
  /** Provider id, first word of the message (`local-rsa`, `local-aes`). */
  readonly provider: string;
  /** What the file holds, e.g. "private key file", "key file", "passphrase file". */
  readonly what: string;
  /** Refuse (ConfigError ENVELOPE_BAD_KEY) instead of warning. */
  readonly strict: boolean;
  /** For tests; default `process.platform`. */
  readonly platform?: string;
}

const warned = new Set<string>();

/**
 * The strict setting: the explicit option when given, else `ENVELOPE_STRICT_KEY_FILES`
 * (`1` / `true`) in `env`.
 *
 * @example
 * strictKeyFiles(undefined, process.env) // true when ENVELOPE_STRICT_KEY_FILES=1
 */
export function strictKeyFiles(
  option: unknown,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (option !== undefined) {
    if (typeof option !== "boolean") {
      throw new ConfigError("ENVELOPE_BAD_CONFIG", "strictKeyFiles must be true or false.", {
        details: { field: "strictKeyFiles" },
      });
    }
    return option;
  }
  const value = env[STRICT_KEY_FILES_ENV]?.trim().toLowerCase();
  return value === "1" || value === "true";
}

/**
 * Checks the permission bits of a file that holds a secret key (`mode` from `fs.stat`).
 * Any access for group or others (`mode & 0o077`, as OpenSSH demands of private keys):
 * emits one process warning per file (`code` ENVELOPE_KEY_FILE_PERMISSIONS, type
 * `SecurityWarning`), or, when strict, throws ConfigError `ENVELOPE_BAD_KEY` before the
 * key is used. Skipped on Windows, where the mode bits do not describe access (ACLs do).
 *
 * @example
 * checkKeyFileMode("/run/secrets/key.pem", statSync(path).mode, { provider: "local-rsa", what: "private key file", strict: false });
 */
export function checkKeyFileMode(file: string, mode: number, check: KeyFileCheck): void {
  if ((check.platform ?? process.platform) === "win32") return;
  const open = mode & 0o077;
  if (open === 0) return;
  const octal = `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
  const who = [open & 0o070 ? "group" : "", open & 0o007 ? "others" : ""]
    .filter(Boolean)
    .join(" and ");
  const problem = `${check.provider}: ${check.what} ${file} is accessible to ${who} (mode ${octal}).`;
  const fix = `Restrict it to the owner: chmod 600 ${file} (on Kubernetes, set defaultMode: 0400 on the secret volume).`;
  if (check.strict) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `${problem} Refused because strict key-file checks are on (${STRICT_KEY_FILES_ENV} or strictKeyFiles). ${fix}`,
      { details: { field: "path", mode: octal } },
    );
  }
  if (warned.has(file)) return;
  warned.add(file);
  process.emitWarning(
    `${problem} ${fix} Set ${STRICT_KEY_FILES_ENV}=1 (or strictKeyFiles: true) to refuse such files.`,
    { type: "SecurityWarning", code: KEY_FILE_WARNING_CODE },
  );
}
