import { rewrapTable } from "@envelope/batch-rewrap";
import { ConfigError } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { specList } from "../config/load.js";
import { loadKeys, targetKeys } from "../config/load-keys.js";
import { addDbOptions, collect, type DbFlags, jobOptions, threaded } from "../db/job-flags.js";
import { openDb } from "../db/open-db.js";
import { checkResume, stopJobOnQuit } from "../db/resume.js";
import { rewrapThreads } from "../db/rewrap-threads.js";
import { progressBar } from "../progress.js";
import { printReport } from "../report/job-report.js";
import { rewrapFile } from "./rewrap-file.js";

/** `rewrap`: a file (header or entries only), or a database column as a resumable batch job. */
export function registerRewrapCommand(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const rewrap = program
    .command("rewrap")
    .description(
      "Re-protect data keys under the current encrypting key(s): a file (header only), or a database column (batch job; dry run unless --apply).",
    )
    .argument("[file]", "a stream or single-envelope file; omit with --db")
    .option("-o, --output <file>", "file mode: output file (- = stdout)")
    .option("--in-place", "file mode: replace the file (written to a temp file, then renamed)")
    .option(
      "-c, --file-context <key=value>",
      "file mode: the context given at encrypt",
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("--to <uri>", "target key URI(s) instead of the config's encrypting keys", collect)
    .option(
      "--threads <n>",
      "database mode: rewrap values on worker threads: auto (one per core), a count, or off (default: auto when every key is a local-aes key, the machine has several cores and no --rate-limit is set; otherwise the main thread)",
    )
    .option(
      "--no-verify-body",
      "skip authenticating each value's body (GCM tag under its context) before it is rewrapped; by default a corrupted or moved value is reported as a failure and left unchanged",
    );
  addDbOptions(rewrap).addHelpText(
    "after",
    "\nExamples:\n  envelope rewrap backup.sql.env --in-place -c file=backup.sql\n  envelope rewrap --db postgres://localhost/app --table users --column email            # dry run\n  envelope rewrap --db postgres://localhost/app --table users --column email --apply    # do it\n  envelope rewrap --db $DB --table users --column email,phone --context 'table=users,column={column},id={id}' --apply --workers 4 --rate-limit 500\n  envelope rewrap --db $DB --table users --column email --apply --threads off   # local-aes keys: keep the rewraps on the main thread",
  );
  rewrap.action(
    async (
      file: string | undefined,
      opts: DbFlags & {
        output?: string;
        inPlace?: boolean;
        fileContext?: string[];
        verifyBody?: boolean;
        threads?: string;
      },
      cmd: Command,
    ) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & DbFlags>();
      if (file) {
        if (opts.db || opts.table)
          throw new ConfigError(
            "ENVELOPE_BAD_INPUT",
            "rewrap: give a file or --db/--table, not both.",
          );
        return rewrapFile(ctx, flags, file, {
          output: opts.output,
          inPlace: opts.inPlace,
          context: opts.fileContext,
          to: opts.to,
          verifyBody: opts.verifyBody !== false,
        });
      }
      const keys = await loadKeys(threaded(ctx), flags);
      const to = await targetKeys(threaded(ctx), keys, opts.to);
      // The same keys as specs, for the rewrap threads to build their own providers from.
      const encryptSpecs = specList(keys.config.library.encrypt);
      const threads = rewrapThreads(
        opts.threads,
        {
          to: opts.to?.length ? opts.to : encryptSpecs,
          decrypt: [...encryptSpecs, ...specList(keys.config.library.decrypt)],
        },
        ctx.io.env,
        opts.rateLimit,
      );
      const db = await openDb(ctx, opts);
      let bar: ReturnType<typeof progressBar> | undefined;
      let offQuit: (() => void) | undefined;
      try {
        const { jobId, prior } = await checkResume(ctx, flags, db, { kind: "rewrap", to });
        const quit = stopJobOnQuit(db, flags, jobId);
        offQuit = quit.off;
        bar = progressBar(ctx.io, Boolean(flags.json), "rewrap");
        const report = await rewrapTable({
          ...(await jobOptions(ctx, opts, quit.db, jobId, bar.onProgress)),
          to,
          decrypt: [...keys.encrypt, ...keys.decrypt],
          verifyBody: opts.verifyBody !== false,
          ...(threads ? { threads } : {}),
        });
        bar.stop();
        setExit(printReport(ctx, Boolean(flags.json), report, prior));
      } finally {
        offQuit?.();
        bar?.stop();
        await db.close();
      }
    },
  );
}
