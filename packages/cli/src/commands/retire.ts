import { countKeyRefs } from "@envelope/batch-rewrap";
import { ConfigError, type KeyProvider, type KeySpec, redactUri, resolveKey } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { editableConfig } from "../config/editable.js";
import { specList } from "../config/load.js";
import { readJsonConfig, writeJsonConfig } from "../config/write.js";
import { addDbOptions } from "../db/job-flags.js";
import { openDb } from "../db/open-db.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";
import { handledBy } from "../rotation/handled-by.js";
import { addGuardOptions, type GuardFlags, refuseDuringJobs } from "../rotation/job-guard.js";

interface RetireFlags extends GuardFlags {
  db?: string;
  table?: string;
  column?: string[];
  pk: string;
  dryRun?: boolean;
}

/**
 * `retire <key>`: the last step of a rotation. Removes a key from `decrypt` in the JSON
 * config file, but only when the named columns hold no value that only this key can open;
 * otherwise it refuses with the count (exit 8) and leaves the file untouched.
 */
export function registerRetireCommand(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const retire = program
    .command("retire <key>")
    .description(
      "Remove an old key from `decrypt` in the config file, only if the given column(s) hold no value that needs it (refuses with the count otherwise). The last step of a rotation.",
    )
    .option("--dry-run", "check and report, but do not change the config file");
  addGuardOptions(addDbOptions(retire, false)).addHelpText(
    "after",
    [
      "",
      "<key> is the key's URI as listed in `decrypt`, or its provider:keyRef / keyRef as `envelope status` shows it.",
      `Exit ${EXIT_CODES.KEY_IN_USE} (config unchanged) when values still need the key: run \`envelope rewrap … --apply\` again, then retry.`,
      `Exit ${EXIT_CODES.JOB_IN_PROGRESS} (config unchanged) while a rewrap/migrate job on these columns is running, or incomplete (resume it; --force overrides an incomplete one only).`,
      "",
      "Examples:",
      "  envelope retire local-rsa:5f0c… --db $DB --table users --column email --dry-run",
      "  envelope retire local-rsa:///srv/keys/old.pem --db $DB --table users --column email,phone",
    ].join("\n"),
  );
  retire.action(async (key: string, opts: RetireFlags, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags>();
    const path = editableConfig("retire", flags, ctx.io.env, ctx.io.cwd);
    if (!opts.table || !opts.column?.length)
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        "retire needs --table and --column: the columns that may hold values under the key (run it for each table).",
        { details: { field: "table" } },
      );

    const file = readJsonConfig(path);
    const encrypt = specList(file.encrypt as KeySpec | KeySpec[] | undefined);
    const decrypt = specList(file.decrypt as KeySpec | KeySpec[] | undefined);
    const resolved = async (specs: KeySpec[], role: string) =>
      Promise.all(
        specs.map(async (spec, i) => ({
          spec,
          provider: await resolveKey(spec, `${role}[${i}]`, ctx.io.env),
        })),
      );
    const encrypting = await resolved(encrypt, "encrypt");
    const decrypting = await resolved(decrypt, "decrypt");
    const matches = ({ spec, provider }: { spec: KeySpec; provider: KeyProvider }) =>
      spec === key ||
      (typeof spec === "string" && redactUri(spec) === key) ||
      `${provider.id}:${provider.keyRef}` === key ||
      provider.keyRef === key;
    if (encrypting.some(matches))
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `${shown(key)} is the encrypting key of ${path}; run \`envelope rotate\` and \`envelope rewrap … --apply\` first.`,
        { details: { field: "key" } },
      );
    const retired = decrypting.filter(matches);
    if (retired.length === 0)
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `${shown(key)} is not in \`decrypt\` of ${path}; give its URI as listed there, or its provider:keyRef as \`envelope status\` shows it.`,
        { details: { field: "key" } },
      );
    const kept = [...encrypting, ...decrypting.filter((k) => !retired.includes(k))];

    const db = await openDb(ctx, opts);
    let scan: Awaited<ReturnType<typeof countKeyRefs>>;
    const where = { table: opts.table, columns: opts.column };
    let forced: { jobId: string }[] = [];
    try {
      // Before the count (fail fast) and after it (a job started meanwhile): a job moving
      // values, or one still writing under this key, makes the count meaningless.
      forced = await refuseDuringJobs(ctx, db, "retire", where, opts);
      scan = await countKeyRefs({
        db,
        table: opts.table,
        primaryKey: opts.pk,
        columns: opts.column,
        signal: ctx.signal,
      });
      await refuseDuringJobs(ctx, db, "retire", where, { ...opts, quiet: true });
    } finally {
      await db.close();
    }
    const retiredProviders = retired.map((k) => k.provider);
    const keptProviders = kept.map((k) => k.provider);
    // Values the retired key opens and no remaining key does: retiring would strand them.
    const blocking: Record<string, number> = {};
    // Values no configured key opens even now: not caused by this retire, but shown.
    const alreadyStranded: Record<string, number> = {};
    for (const [ref, n] of Object.entries(scan.byKeyRef)) {
      if (handledBy(keptProviders, ref)) continue;
      if (handledBy(retiredProviders, ref)) blocking[ref] = n;
      else alreadyStranded[ref] = n;
    }
    const inUse = Object.values(blocking).reduce((a, n) => a + n, 0);
    const stranded = Object.values(alreadyStranded).reduce((a, n) => a + n, 0);
    const label = (spec: KeySpec) =>
      typeof spec === "string" ? redactUri(spec) : `${JSON.stringify(spec).slice(0, 80)}…`;
    const removedSpecs = retired.map((k) => k.spec);
    const changed = inUse === 0 && !opts.dryRun;
    if (changed) {
      const rotation = file.rotation as { keyCreated?: Record<string, string> } | undefined;
      const keyCreated = { ...(rotation?.keyCreated ?? {}) };
      for (const spec of removedSpecs) if (typeof spec === "string") delete keyCreated[spec];
      writeJsonConfig(path, {
        ...file,
        decrypt: decrypt.filter((s) => !removedSpecs.includes(s)),
        ...(rotation ? { rotation: { ...rotation, keyCreated } } : {}),
      });
    }
    const place = `${opts.table}.${opts.column.join(",")}`;
    output(
      ctx.io,
      Boolean(flags.json),
      {
        config: path,
        key: retired.map((k) => ({
          uri: label(k.spec),
          provider: k.provider.id,
          keyRef: k.provider.keyRef,
        })),
        table: opts.table,
        columns: opts.column,
        scanned: scan.scanned,
        valuesUnderKey: inUse,
        byKeyRef: blocking,
        alreadyStranded,
        dryRun: Boolean(opts.dryRun),
        retired: changed,
        refused: inUse > 0,
        forcedPastJobs: forced.map((j) => j.jobId),
      },
      () => {
        const names = retired
          .map((k) => `${shown(k.provider.id)}:${shown(k.provider.keyRef)}`)
          .join(", ");
        const lines: string[] = [];
        if (inUse > 0) {
          lines.push(
            `REFUSED: ${inUse} value(s) in ${place} are still under ${names}; ${path} is unchanged.`,
          );
          for (const [ref, n] of Object.entries(blocking))
            lines.push(`  ${shown(ref)}: ${n} value(s)`);
          lines.push(
            "Make sure every application instance runs the new config, then run `envelope rewrap … --apply` again and retry.",
          );
        } else if (opts.dryRun) {
          lines.push(
            `${place}: ${scan.scanned} rows, no value needs ${names}: \`retire\` without --dry-run would remove it from \`decrypt\` of ${path}.`,
          );
        } else {
          lines.push(
            `${path}: removed ${names} from \`decrypt\` (${place}: ${scan.scanned} rows, none under it).`,
            "Keep its key file until your backups that used it have expired; check other tables with `envelope status --check`.",
          );
        }
        if (stranded > 0)
          lines.push(
            `Note: ${stranded} value(s) in ${place} are under keys no configured key opens (see \`envelope status\`).`,
          );
        return lines.join("\n");
      },
    );
    if (inUse > 0) setExit(EXIT_CODES.KEY_IN_USE);
  });
}
