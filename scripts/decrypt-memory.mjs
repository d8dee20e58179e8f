// Peak RSS of one in-memory decrypt (issue 11 item 9; figures in docs/PERFORMANCE.md).
//
//   node --expose-gc scripts/decrypt-memory.mjs <MiB> <binary|text> [bytes|text]
//
// Run from packages/core (it imports @envelope/core). A child process seals a value of
// <MiB> MiB into a temporary file; this process then reads the file (the sealed value in
// memory is the baseline), decrypts it once, and samples RSS every millisecond. Prints
// the baseline, the peak, and the increase as a multiple of the body.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Envelope, localAesProvider } from "@envelope/core";

const [mibArg = "256", form = "binary", as = "bytes", make, made] = process.argv.slice(2);
const size = Number(mibArg) * 1024 * 1024;
const file = made ?? join(tmpdir(), `envelope-mem-${mibArg}-${form}-${process.pid}.sealed`);
const envelope = new Envelope({
  encrypt: localAesProvider({ keys: "11".repeat(32) }),
  cache: false,
});

if (make === "--make") {
  const sealed = await envelope.encrypt(Buffer.alloc(size, 0x61), {
    output: form === "text" ? "text" : "binary",
  });
  writeFileSync(file, sealed);
  process.exit(0);
}

execFileSync(process.execPath, [process.argv[1], mibArg, form, as, "--make", file], {
  stdio: "inherit",
  env: process.env,
});
const raw = readFileSync(file);
rmSync(file);
const sealed = form === "text" ? raw.toString("latin1") : raw;
globalThis.gc();
const base = process.memoryUsage().rss;
let peak = base;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 1);
const out = await envelope.decrypt(sealed, { as });
peak = Math.max(peak, process.memoryUsage().rss);
clearInterval(timer);
if (out.length !== size) throw new Error("wrong length");
const mib = (n) => Math.round(n / 2 ** 20);
console.log(
  JSON.stringify({
    body: `${mibArg} MiB`,
    form,
    as,
    baselineRssMiB: mib(base),
    peakRssMiB: mib(peak),
    increaseMiB: mib(peak - base),
    increaseOverBody: +((peak - base) / size).toFixed(2),
    peakOverBody: +(peak / size).toFixed(2),
  }),
);
