import { encryptStream } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { parsePairs } from "../config/encryption-context.js";
import { loadKeys } from "../config/load-keys.js";
import { inputStream, pipeTo } from "../file-streams.js";

/** A repeatable flag: each occurrence is one more value. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `encrypt`: a file or stdin as an Envelope stream. */
export function registerEncryptCommand(program: Command, ctx: CliContext): void {
  program
    .command("encrypt")
    .description("Encrypt a file or stdin as an Envelope stream (constant memory, any size).")
    .argument("[file]", "input file; - or omitted = stdin")
    .option(
      "-o, --output <file>",
      "output file; - or omitted = stdout (a file is written to a temp name, then renamed)",
    )
    .option(
      "-c, --context <key=value>",
      "encryption context pair(s), repeatable or comma-separated; needed again to decrypt",
      collect,
    )
    .option("--chunk-size <bytes>", "plaintext bytes per chunk (1024…16777216)", "65536")
    .addHelpText(
      "after",
      "\nExample:\n  envelope encrypt backup.sql -o backup.sql.env -c file=backup.sql\n  pg_dump app | envelope encrypt -c db=app > app.dump.env",
    )
    .action(
      async (
        file: string | undefined,
        opts: { output?: string; context?: string[]; chunkSize: string },
        cmd: Command,
      ) => {
        const keys = await loadKeys(ctx, cmd.optsWithGlobals<GlobalFlags>());
        const chunkSize = Number(opts.chunkSize);
        const transform = encryptStream(keys.envelope, {
          context: parsePairs(opts.context),
          chunkSize,
        });
        await pipeTo(ctx.io, inputStream(ctx.io, file), [transform], opts.output, 0o644);
      },
    );
}
