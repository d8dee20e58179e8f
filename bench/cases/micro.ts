import { randomBytes } from "node:crypto";
import { type Timing, timeInterleaved } from "../lib/measure.js";
import type { Subject } from "../lib/subjects.js";

export const SIZES = [
  ["64 B", 64],
  ["1 KiB", 1024],
  ["1 MiB", 1024 * 1024],
] as const;

/** Interleaved measuring: ROUNDS rounds, each giving every case one SLICE_MS slice. */
export const ROUNDS = 8;
export const SLICE_MS = 50;
export const WARMUP_MS = 60;

export interface MicroResult extends Timing {
  subject: string;
  family: Subject["family"];
  op: "encrypt" | "decrypt";
  size: string;
  bytes: number;
  /** MiB/s of plaintext. */
  mibPerSec: number;
}

/**
 * Encrypt and decrypt of one value, back to back, for each subject and size. Decrypt
 * opens the same sealed value repeatedly: for subjects without a cache that is a cold
 * decrypt every time (the data key is unwrapped each time); with a cache it is warm.
 * All cases of one size are measured interleaved (see timeInterleaved).
 */
export async function runMicro(
  subjects: Subject[],
  log: (line: string) => void,
): Promise<MicroResult[]> {
  const results: MicroResult[] = [];
  for (const [size, bytes] of SIZES) {
    const plaintext = randomBytes(bytes);
    const cases: { subject: Subject; op: "encrypt" | "decrypt"; run: () => unknown }[] = [];
    for (const subject of subjects) {
      if (bytes > 1024 && !subject.large) continue;
      const sealed = await subject.seal(plaintext);
      if (subject.roundTrips !== false) {
        const opened = await subject.open(sealed);
        if (!plaintext.equals(opened))
          throw new Error(`${subject.name} did not round-trip ${size}`);
      }
      for (const op of subject.ops) {
        cases.push({
          subject,
          op,
          run: op === "encrypt" ? () => subject.seal(plaintext) : () => subject.open(sealed),
        });
      }
    }
    const timings = await timeInterleaved(
      cases.map((c) => ({ op: c.run, minOpsPerSlice: 2 })),
      { rounds: ROUNDS, sliceMs: SLICE_MS, warmupMs: WARMUP_MS },
    );
    cases.forEach(({ subject, op }, i) => {
      const timing = timings[i]!;
      results.push({
        subject: subject.name,
        family: subject.family,
        op,
        size,
        bytes,
        ...timing,
        mibPerSec: (timing.opsPerSec * bytes) / 2 ** 20,
      });
      log(
        `  ${size.padEnd(6)} ${op.padEnd(7)} ${subject.name.padEnd(42)} ${fmt(timing.opsPerSec).padStart(10)} ops/s  p50 ${fmt(timing.p50Us!)} µs  p99 ${fmt(timing.p99Us!)} µs`,
      );
    });
  }
  return results;
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return "—";
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
