import { rename } from "node:fs/promises";
import { resolve } from "node:path";
import {
  ConfigError,
  decryptStream,
  encryptStream,
  inspectEnvelope,
  inspectStream,
  isStream,
  isTextForm,
} from "@envelope/core";
import type { Command } from "commander";
import { parsePairs } from "../config/context.js";
import { type CliContext, type GlobalFlags, loadKeys, targetKeys } from "../context.js";
import { inputStream, peek, pipeTo, readAll, readHead } from "../files.js";
import { output } from "../io.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];
const SINGLE_MAX = 1024 * 1024 * 1024 + 300 * 1024;
const HEAD = 15 + 256 * 1024;

export function registerFileCommands(program: Command, ctx: CliContext): void {
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
        const bytes = await readAll(stream, SINGLE_MAX);
        const text = bytes.toString("latin1").trim();
        const sealed = isTextForm(text) ? text : bytes;
        const plaintext = await keys.envelope.decrypt(sealed, { context, as: "bytes" });
        const { Readable } = await import("node:stream");
        await pipeTo(ctx.io, Readable.from([plaintext]), [], opts.output);
        plaintext.fill(0);
      },
    );

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
              ? await readAll(inputStream(ctx.io, file), SINGLE_MAX)
              : head;
          const text = bytes.toString("latin1").trim();
          info = inspectEnvelope(isTextForm(text) ? text : bytes);
        }
      }
      output(ctx.io, true, info, () => "");
    });
}

/** `rewrap <file>`: only the header (stream) or the entries (single value) change. */
export async function rewrapFile(
  ctx: CliContext,
  flags: GlobalFlags,
  file: string,
  opts: {
    output?: string;
    inPlace?: boolean;
    context?: string[];
    to?: string[];
    verifyBody?: boolean;
  },
): Promise<void> {
  if (!opts.output && !opts.inPlace) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "rewrap <file>: give -o <out> (or - for stdout), or --in-place.",
      { details: { field: "output" } },
    );
  }
  const keys = await loadKeys(ctx, flags);
  const to = await targetKeys(ctx, keys, opts.to);
  const context = parsePairs(opts.context);
  file = resolve(ctx.io.cwd, file);
  const out = opts.inPlace ? `${file}.rewrap-${process.pid}` : opts.output;
  const { head, stream } = await peek(inputStream(ctx.io, file), 4);
  const { rewrapStream } = await import("@envelope/core");
  if (isStream(head)) {
    await pipeTo(ctx.io, stream, [rewrapStream(keys.envelope, { to, context })], out, 0o644);
  } else {
    const bytes = await readAll(stream, SINGLE_MAX);
    const text = bytes.toString("latin1").trim();
    // The body is authenticated first (unless --no-verify-body): a damaged value fails.
    const verifyBody = opts.verifyBody !== false;
    const next = isTextForm(text)
      ? `${await keys.envelope.rewrap(text, { to, context, verifyBody })}\n`
      : await keys.envelope.rewrap(bytes, { to, context, verifyBody });
    const { Readable } = await import("node:stream");
    await pipeTo(ctx.io, Readable.from([Buffer.from(next)]), [], out, 0o644);
  }
  if (opts.inPlace) await rename(out!, file);
  if (out !== "-" && !flags.json)
    ctx.io.stderr.write(
      `rewrapped ${file} → ${opts.inPlace ? file : out} (${to.map((p) => `${p.id}:${p.keyRef}`).join(", ")})\n`,
    );
  if (flags.json)
    output(
      ctx.io,
      true,
      { file, output: opts.inPlace ? file : out, to: to.map((p) => `${p.id}:${p.keyRef}`) },
      () => "",
    );
}
