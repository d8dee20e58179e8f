import { rename } from "node:fs/promises";
import { resolve } from "node:path";
import { ConfigError, isStream, isTextForm } from "@envelope/core";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { parsePairs } from "../config/encryption-context.js";
import { loadKeys, targetKeys } from "../config/load-keys.js";
import { inputStream, peek, pipeTo, readAll, SINGLE_ENVELOPE_MAX } from "../file-streams.js";
import { output } from "../io.js";

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
    const bytes = await readAll(stream, SINGLE_ENVELOPE_MAX);
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
