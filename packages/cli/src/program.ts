import { ConfigError, EnvelopeError } from "@envelope/core";
import { Command, CommanderError } from "commander";
import type { CliContext } from "./command-context.js";
import { registerCheckCommand } from "./commands/check.js";
import { registerDecryptCommand } from "./commands/decrypt.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerEncryptCommand } from "./commands/encrypt.js";
import { registerInspectCommand } from "./commands/inspect.js";
import { registerKeygenCommand } from "./commands/keygen.js";
import { registerKeystoreCommands } from "./commands/keystore.js";
import { registerMigrateCommand } from "./commands/migrate.js";
import { registerRetireCommand } from "./commands/retire.js";
import { registerRewrapCommand } from "./commands/rewrap.js";
import { registerRotateCommand } from "./commands/rotate.js";
import { registerStatusCommand } from "./commands/status.js";
import { EXIT_CODES, exitCodeFor, exitCodesHelp, isFileError } from "./exit-codes.js";
import { type CliIo, jsonText, processIo, shown } from "./io.js";
import { CLI_VERSION } from "./version.js";

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value.split(/[\s,]+/).filter(Boolean),
];

/** Builds the `envelope` program. `setExit` records the exit code a command wants. */
export function buildProgram(ctx: CliContext, setExit: (code: number) => void): Command {
  const program = new Command("envelope")
    .description(
      "Envelope encryption from the command line: keys, files, rotation and batch rewrap of database columns.",
    )
    .version(CLI_VERSION)
    .option("--config <path>", "config file (default: ./envelope.config.json, .mjs, .js or .ts)")
    .option(
      "--key <uri>",
      "encrypting key URI(s), overriding config and ENVELOPE_ENCRYPT_KEYS",
      collect,
    )
    .option(
      "--decrypt-key <uri>",
      "extra decrypting key URI(s), overriding config and ENVELOPE_DECRYPT_KEYS",
      collect,
    )
    .option("--json", "machine-readable JSON output (no progress bar)")
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    })
    .addHelpText("after", `\n${exitCodesHelp()}`);
  registerKeygenCommand(program, ctx);
  registerRotateCommand(program, ctx);
  registerStatusCommand(program, ctx, setExit);
  registerRetireCommand(program, ctx, setExit);
  registerCheckCommand(program, ctx, setExit);
  registerEncryptCommand(program, ctx);
  registerDecryptCommand(program, ctx);
  registerInspectCommand(program, ctx);
  registerRewrapCommand(program, ctx, setExit);
  registerMigrateCommand(program, ctx, setExit);
  registerDemoCommand(program, ctx);
  registerKeystoreCommands(program, ctx, setExit);
  program.exitOverride();
  for (const cmd of program.commands)
    cmd.exitOverride().configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    });
  return program;
}

/**
 * The `error` object of `--json` output. Its `code` is an `ENVELOPE_*` code, a file error
 * code (`ENOENT`, `EACCES`, …) or `INTERNAL` (an unexpected non-Envelope error: a bug),
 * all listed in docs/ERRORS.md. These strings are stable: scripts match on them.
 */
export function errorJson(error: unknown): {
  name: string;
  code: string;
  message: string;
  details?: unknown;
} {
  if (EnvelopeError.isInstance(error)) return error.toJSON();
  if (isFileError(error)) return { name: "FileError", code: error.code!, message: error.message };
  return {
    name: "Error",
    code: INTERNAL_ERROR_CODE,
    message: String((error as Error)?.message ?? error),
  };
}

/** `--json` error code of an unexpected error (exit 1). Documented in docs/ERRORS.md; never renamed. */
export const INTERNAL_ERROR_CODE = "INTERNAL";

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code. Never
 * calls process.exit, so tests can run it in-process.
 *
 * @example
 * const code = await main(["inspect", "backup.env"]);
 */
export async function main(
  argv: readonly string[],
  io: CliIo = processIo(),
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  let exit: number = EXIT_CODES.OK;
  const ctx: CliContext = { io, signal };
  const program = buildProgram(ctx, (code) => {
    exit = code;
  });
  const json = argv.includes("--json");
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exit;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
      )
        return EXIT_CODES.OK;
      // Commander already printed the problem and the usage on stderr; under --json a script
      // gets the same error object as for any other failure.
      if (json) {
        const usage = new ConfigError(
          "ENVELOPE_BAD_INPUT",
          // One line: Commander's "(Did you mean …?)" comes on a line of its own.
          `${error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ")}. See envelope <command> --help.`,
          { details: { field: "arguments", commander: error.code } },
        );
        reportError(io, true, usage);
      }
      return EXIT_CODES.USAGE;
    }
    return reportError(io, json, error);
  }
}

/**
 * Prints an error the way every command does and returns its exit code: under `--json`,
 * `{ error, exitCode }` on stdout; otherwise one line on stderr, `envelope: <message> [CODE]`
 * for a typed error (no stack trace). Messages can name strings read from a stored value, so
 * human output escapes control characters and caps the length. Only an unexpected error (a
 * bug, exit 1) shows its stack.
 */
export function reportError(io: CliIo, json: boolean, error: unknown): number {
  const code = exitCodeFor(error);
  if (json) {
    io.stdout.write(`${jsonText({ error: errorJson(error), exitCode: code })}\n`);
  } else if (isFileError(error)) {
    io.stderr.write(
      `envelope: ${shown(error.message, MESSAGE_MAX)}. Check the path and permissions. [${shown(error.code)}]\n`,
    );
  } else if (EnvelopeError.isInstance(error)) {
    io.stderr.write(`envelope: ${shown(error.message, MESSAGE_MAX)} [${shown(error.code)}]\n`);
  } else {
    const stack = String((error as Error)?.stack ?? error)
      .split("\n")
      .map((line) => shown(line, MESSAGE_MAX))
      .join("\n");
    io.stderr.write(`envelope: unexpected error: ${stack}\nThis is a bug; please report it.\n`);
  }
  return code;
}

/** Longest error message shown in human output (each stored string in it is capped by core too). */
const MESSAGE_MAX = 2000;
