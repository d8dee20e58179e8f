import { decryptStream, isStream, isTextForm } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { parsePairs } from "../config/encryption-context.js";
import { loadKeys } from "../config/load-keys.js";
import { inputStream, peek, pipeTo, readAll, SINGLE_ENVELOPE_MAX } from "../file-streams.js";

/** A repeatable flag: each occurrence is one more value. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `decrypt`: an Envelope stream, or a single envelope (binary or ev1: text). */
export function registerDecryptCommand(program: Command, ctx: CliContext): void {
  program
    .command("decrypt")
    .description(
      "Decrypt an Envelope stream (or a single envelope, binary or ev1: text) from a file or stdin.",
    )
    .argument("[file]", "input file; - or omitted = stdin")
    .option(
      "-o, --output <file>",
      "output file (mode 0600, written only if the whole input verifies); - or omitted = stdout",
    )
    .option("-c, --context <key=value>", "the context given at encrypt", collect)
    .option(
      "--allow-legacy-stream",
      "also open streams written by @envelope/core 0.1 (key envelope without the stream-key flag); weaker, see docs/STREAMING.md",
    )
    .addHelpText(
      "after",
      "\nExample:\n  envelope decrypt backup.sql.env -o backup.sql -c file=backup.sql\n\nWhen writing to stdout, the output already written is invalid if the command fails.",
    )
    .action(
      async (
        file: string | undefined,
        opts: { output?: string; context?: string[]; allowLegacyStream?: boolean },
        cmd: Command,
      ) => {
        const keys = await loadKeys(ctx, cmd.optsWithGlobals<GlobalFlags>());
        const context = parsePairs(opts.context);
        const { head, stream } = await peek(inputStream(ctx.io, file), 4);
        if (isStream(head) || head.length === 0) {
          const allowLegacyKeyEnvelope = opts.allowLegacyStream === true;
          const transform = decryptStream(keys.envelope, { context, allowLegacyKeyEnvelope });
          await pipeTo(ctx.io, stream, [transform], opts.output);
          return;
        }
        const bytes = await readAll(stream, SINGLE_ENVELOPE_MAX);
        const text = bytes.toString("latin1").trim();
        const sealed = isTextForm(text) ? text : bytes;
        const plaintext = await keys.envelope.decrypt(sealed, { context, as: "bytes" });
        const { Readable } = await import("node:stream");
        await pipeTo(ctx.io, Readable.from([plaintext]), [], opts.output);
        plaintext.fill(0);
      },
    );
}
