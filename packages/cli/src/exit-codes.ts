import { EnvelopeError } from "@envelope/core";

/** Process exit codes of the `envelope` command. Documented in the README; never renumbered. */
export const EXIT_CODES = {
  /** Success (a dry run that found work to do is a success too). */
  OK: 0,
  /** Unexpected internal error (a bug): please report it. */
  INTERNAL: 1,
  /** Bad usage or configuration: unknown flag, bad config file, missing key, unknown table or column. */
  USAGE: 2,
  /** Data error: a value or file is not a valid envelope, is truncated or tampered, or the context is wrong. */
  DATA: 3,
  /** Key provider / KMS error: unreachable, throttled after retries, access denied, key disabled. */
  PROVIDER: 4,
  /** A database job finished but some values failed (see the report); rerun to retry them. */
  PARTIAL: 5,
  /** `status --check`: a key is past its rotation due date. */
  ROTATION_DUE: 6,
  /**
   * `status --check` with `--table`/`--column`: some values are under a key that no
   * configured key can open (stranded: they cannot be decrypted). Takes precedence over 6.
   */
  STRANDED: 7,
  /** `retire` refused: the key still protects values in the named columns; config unchanged. */
  KEY_IN_USE: 8,
  /**
   * `check`: every provider can do its job, but some only in part (an encrypt-only key, or a
   * decrypt-only key whose KMS refused the canary wrap). `--allow-degraded` makes this 0.
   */
  DEGRADED: 9,
  /**
   * `retire` / `rotate` refused: a rewrap or migrate job on the same table/columns is running,
   * or incomplete (stopped or killed, not resumed); nothing was changed.
   */
  JOB_IN_PROGRESS: 10,
  /** Interrupted (Ctrl-C): stopped cleanly at a checkpoint; rerun the same command to resume. */
  INTERRUPTED: 130,
  /** The reader of stdout went away (`envelope decrypt … | head`): stopped quietly, like SIGPIPE. */
  BROKEN_PIPE: 141,
} as const;

/** One line per exit code for `envelope --help`: every code of {@link EXIT_CODES}, in order. */
export const EXIT_CODE_HELP: Readonly<Record<keyof typeof EXIT_CODES, string>> = {
  OK: "ok",
  INTERNAL: "internal error",
  USAGE: "usage/config",
  DATA: "bad or undecryptable data",
  PROVIDER: "KMS/provider",
  PARTIAL: "job finished with failures",
  ROTATION_DUE: "rotation due (status --check)",
  STRANDED: "stranded values (status --check)",
  KEY_IN_USE: "key still in use (retire)",
  DEGRADED: "providers only partly usable (check)",
  JOB_IN_PROGRESS: "a job on these columns is running or incomplete (retire, rotate)",
  INTERRUPTED: "interrupted (rerun, or add --resume, to continue)",
  BROKEN_PIPE: "stdout closed by its reader",
};

/** The exit-code paragraph of `envelope --help`, built from {@link EXIT_CODES}. */
export function exitCodesHelp(): string {
  const parts = (Object.keys(EXIT_CODES) as (keyof typeof EXIT_CODES)[]).map(
    (name) => `${EXIT_CODES[name]} ${EXIT_CODE_HELP[name]}`,
  );
  return `Exit codes: ${parts.join(" · ")}`;
}

const DATA_CODES = new Set([
  "ENVELOPE_BAD_FORMAT",
  "ENVELOPE_UNSUPPORTED_VERSION",
  "ENVELOPE_UNSUPPORTED_SUITE",
  "ENVELOPE_LIMIT_EXCEEDED",
  "ENVELOPE_DECRYPT_FAILED",
  "ENVELOPE_COMMITMENT_MISMATCH",
  "ENVELOPE_CONTEXT_MISMATCH",
  "ENVELOPE_NO_MATCHING_KEY",
  "ENVELOPE_WRONG_PURPOSE",
]);

/** Maps an error to the exit code that tells a script what kind of problem it was. */
export function exitCodeFor(error: unknown): number {
  if (isFileError(error)) return EXIT_CODES.USAGE;
  if (!EnvelopeError.isInstance(error)) return EXIT_CODES.INTERNAL;
  if (DATA_CODES.has(error.code)) return EXIT_CODES.DATA;
  if (error.code === "ENVELOPE_JOB_IN_PROGRESS") return EXIT_CODES.JOB_IN_PROGRESS;
  if (
    error.name === "ProviderError" ||
    error.code.startsWith("ENVELOPE_KMS_") ||
    error.code.startsWith("ENVELOPE_KEY_") ||
    error.code === "ENVELOPE_UNWRAP_FAILED" ||
    error.code === "ENVELOPE_PROVIDER_CONTRACT"
  ) {
    return EXIT_CODES.PROVIDER;
  }
  return EXIT_CODES.USAGE;
}

/** A file the user named could not be opened or written (missing, permissions, a directory). */
export function isFileError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException)?.code;
  return (
    typeof code === "string" &&
    ["ENOENT", "EACCES", "EISDIR", "ENOTDIR", "EEXIST", "EPERM", "EROFS", "ENOSPC"].includes(code)
  );
}
