import type { ProviderReadiness, ReadinessReport } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { loadKeys } from "../config/load-keys.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";

interface CheckFlags {
  timeout: string;
  allowDegraded?: boolean;
}

/**
 * `check`: the readiness probe for deploys and health checks. Wraps and unwraps a canary
 * data key with every configured key and reports each one; touches no application data.
 */
export function registerCheckCommand(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  program
    .command("check")
    .description(
      "Readiness check: wrap and unwrap a canary data key with every configured key (no application data touched) and report each key's status and latency.",
    )
    .option("--timeout <ms>", "per key and step (probe, wrap, unwrap)", "10000")
    .option(
      "--allow-degraded",
      "exit 0 when keys are only degraded (encrypt-only, decrypt-only without wrap permission)",
    )
    .addHelpText(
      "after",
      [
        "",
        `Exit ${EXIT_CODES.OK}: every key ok. Exit ${EXIT_CODES.DEGRADED}: some key degraded, none failed. Exit ${EXIT_CODES.PROVIDER}: some key failed.`,
        "",
        "Examples:",
        "  envelope check",
        "  envelope check --json --timeout 3000   # in a readiness probe",
      ].join("\n"),
    )
    .action(async (opts: CheckFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const timeoutMs = Number(opts.timeout);
      const keys = await loadKeys(ctx, flags);
      const report = await keys.envelope.check({ timeoutMs });
      output(ctx.io, Boolean(flags.json), report, () => renderReadiness(report));
      setExit(checkExitCode(report, Boolean(opts.allowDegraded)));
    });
}

/** The exit code for a readiness report: failed beats degraded beats ok. */
export function checkExitCode(report: ReadinessReport, allowDegraded: boolean): number {
  if (!report.ok) return EXIT_CODES.PROVIDER;
  const degraded = report.providers.some((p) => p.status === "degraded");
  return degraded && !allowDegraded ? EXIT_CODES.DEGRADED : EXIT_CODES.OK;
}

/** One line per key, then the error (code, step, advice) under any key that is not ok. */
export function renderReadiness(report: ReadinessReport): string {
  const lines = report.providers.map(renderOne);
  const failed = report.providers.filter((p) => p.status === "failed").length;
  const degraded = report.providers.filter((p) => p.status === "degraded").length;
  const summary =
    failed > 0
      ? `NOT READY: ${failed} key(s) failed.`
      : degraded > 0
        ? `Ready, degraded: ${degraded} key(s) can do only part of their job.`
        : `Ready: ${report.providers.length} key(s) ok.`;
  return [...lines, "", summary].join("\n");
}

function renderOne(p: ProviderReadiness): string {
  const ms = (["probe", "wrap", "unwrap"] as const)
    .filter((step) => p.latencyMs[step] !== undefined)
    .map((step) => `${step} ${p.latencyMs[step]} ms`)
    .join(", ");
  // Hierarchical mode: the master key the canary went through.
  const via = p.via ? ` via ${shown(p.via.provider)}:${shown(p.via.keyRef, 80)}` : "";
  const head = `${p.status.toUpperCase().padEnd(8)} ${p.role.padEnd(7)} ${shown(p.provider)}:${shown(p.keyRef, 80)}${via}${ms ? `  (${ms})` : ""}`;
  if (!p.error) return head;
  return `${head}\n         ${p.error.code} on ${p.error.step}: ${shown(p.error.message, 400)}`;
}
