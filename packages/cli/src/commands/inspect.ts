import { inspectEnvelope, inspectStream, isStream, isTextForm } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext } from "../command-context.js";
import { inputStream, readAll, readHead, SINGLE_ENVELOPE_MAX } from "../file-streams.js";
import { output } from "../io.js";

/** Bytes read to inspect a header: the stream header with its largest key envelope. */
const HEAD = 15 + 256 * 1024;

/** `inspect`: an envelope's header as JSON, never key material. */
export function registerInspectCommand(program: Command, ctx: CliContext): void {
  program
    .command("inspect")
    .description(
      "Print an envelope's header as JSON: format, version, suite, providers, key references, sizes. Never key material.",
    )
    .argument(
      "[file]",
      "a stream file or a single envelope (binary or ev1: text); - or omitted = stdin",
    )
    .option("--value <ev1>", "inspect this ev1: text value instead of a file")
    .addHelpText(
      "after",
      "\nExample:\n  envelope inspect backup.sql.env\n  envelope inspect --value ev1:AQEA…",
    )
    .action(async (file: string | undefined, opts: { value?: string }) => {
      let info: unknown;
      if (opts.value) info = inspectEnvelope(opts.value.trim());
      else {
        const head = await readHead(ctx.io, file, HEAD);
        if (isStream(head)) info = inspectStream(head);
        else {
          const bytes =
            file && file !== "-" && head.length === HEAD
              ? await readAll(inputStream(ctx.io, file), SINGLE_ENVELOPE_MAX)
              : head;
          const text = bytes.toString("latin1").trim();
          info = inspectEnvelope(isTextForm(text) ? text : bytes);
        }
      }
      output(ctx.io, true, info, () => "");
    });
}
