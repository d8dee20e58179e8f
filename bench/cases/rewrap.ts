import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import {
  hierarchicalProvider,
  type KeyStore,
  memoryKeyStore,
  rotateMaster,
} from "@envelope/hierarchical";
import { timeBatch } from "../lib/measure.js";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";
import { KMS_LATENCY_MS } from "./kms.js";

export interface RewrapResult {
  case: string;
  mode: "direct" | "hierarchical";
  records: number;
  /** Records actually rewrapped in this run (0 for hierarchical: records are not touched). */
  ran: number;
  intermediateKeys: number | undefined;
  kmsCalls: number;
  /** Wall time for all `records` (measured, or projected from the measured rate when ran < records). */
  seconds: number;
  measured: boolean;
  note: string;
}

/** rotateMaster's concurrency in these runs (one KMS round trip for up to this many IKs). */
export const ROTATE_CONCURRENCY = 16;

/**
 * Master-key rotation. Direct mode rewraps every record (one native KMS rewrap each, 64
 * at a time); hierarchical mode rewraps the intermediate keys only. `big.store` holds the
 * intermediate keys of the 1,000,000 records sealed by the memory case.
 */
export async function runRewrap(
  big: {
    store: KeyStore;
    master: ReturnType<typeof simulatedKms>;
    samples: Buffer[];
    plaintext: Buffer;
    records: number;
  },
  log: (line: string) => void,
): Promise<RewrapResult[]> {
  const results: RewrapResult[] = [];
  const add = (r: RewrapResult) => {
    results.push(r);
    log(
      `  ${r.case.padEnd(62)} ${r.seconds.toFixed(3).padStart(9)} s  KMS calls ${r.kmsCalls}${r.measured ? "" : " (projected)"}`,
    );
  };
  const plaintext = randomBytes(64);

  // Direct mode, 10 ms KMS with native rewrap: 10,000 records measured; 1,000,000 projected.
  {
    const counter = { calls: 0 };
    const old = simulatedKms({ latencyMs: 0 });
    const next = simulatedKms({ latencyMs: KMS_LATENCY_MS, oldKeys: [old.key], counter });
    const sealer = new Envelope({ encrypt: old.provider, cache: false });
    const sealed: Buffer[] = [];
    for (let i = 0; i < 10_000; i++)
      sealed.push(await sealer.encrypt(plaintext, { context: CONTEXT, output: "binary" }));
    const envelope = new Envelope({ encrypt: next.provider });
    const callsBefore = counter.calls;
    const timing = await timeBatch(10_000, 64, (i) =>
      envelope.rewrap(sealed[i]!, { to: next.provider, context: CONTEXT }),
    );
    // Counted, not assumed: the native rewrap plus the proof that its entry opens.
    const calls = counter.calls - callsBefore;
    const check = await new Envelope({
      encrypt: simulatedKms({ latencyMs: 0, key: next.key }).provider,
    }).decrypt(await envelope.rewrap(sealed[0]!, { to: next.provider, context: CONTEXT }), {
      context: CONTEXT,
    });
    if (!check.equals(plaintext)) throw new Error("direct rewrap did not round-trip");
    add({
      case: "direct (10 ms KMS, native rewrap, 64 concurrent): 10,000 records",
      mode: "direct",
      records: 10_000,
      ran: 10_000,
      intermediateKeys: undefined,
      kmsCalls: calls,
      seconds: timing.ms / 1000,
      measured: true,
      note: `in memory (no database), ${(calls / 10_000).toFixed(2)} KMS calls per record in a row; the batch engine on PostgreSQL: packages/batch-rewrap/bench/rewrap-100k.ts`,
    });
    add({
      case: "direct (10 ms KMS, native rewrap, 64 concurrent): 1,000,000 records",
      mode: "direct",
      records: 1_000_000,
      ran: 0,
      intermediateKeys: undefined,
      kmsCalls: calls * 100,
      seconds: (timing.ms / 1000) * 100,
      measured: false,
      note: "projected from the 10,000-record rate (100 × the time); not run",
    });
  }
  // Direct mode with a local AES key (no latency): pure CPU per record.
  {
    const oldKey = randomBytes(32);
    const old = localAesProvider({ keys: oldKey });
    const next = localAesProvider({ keys: [randomBytes(32), oldKey] });
    const sealer = new Envelope({ encrypt: old, cache: false });
    const sealed: Buffer[] = [];
    for (let i = 0; i < 10_000; i++)
      sealed.push(await sealer.encrypt(plaintext, { context: CONTEXT, output: "binary" }));
    const envelope = new Envelope({ encrypt: next, cache: false });
    const timing = await timeBatch(10_000, 1, (i) =>
      envelope.rewrap(sealed[i]!, { to: next, context: CONTEXT }),
    );
    add({
      case: "direct (local-aes, no latency): 10,000 records",
      mode: "direct",
      records: 10_000,
      ran: 10_000,
      intermediateKeys: undefined,
      kmsCalls: 0,
      seconds: timing.ms / 1000,
      measured: true,
      note: "CPU only: unwrap, commitment check, wrap, re-encode",
    });
    // As the batch engine does it (body verified), next to its crypto floor in this run: two
    // AES key-wrap ciphers, the three HMACs of the HKDF and one AES-GCM verify per value.
    const verified = await timeBatch(10_000, 1, (i) =>
      envelope.rewrap(sealed[i]!, { to: next, context: CONTEXT, verifyBody: true }),
    );
    const floorMs = cryptoFloorMs(10_000, sealed[0]!.length);
    add({
      case: "direct (local-aes, body verified as the batch engine does): 10,000 records",
      mode: "direct",
      records: 10_000,
      ran: 10_000,
      intermediateKeys: undefined,
      kmsCalls: 0,
      seconds: verified.ms / 1000,
      measured: true,
      note: `CPU only; its crypto alone (2 AES-KW, HKDF, GCM verify per value) took ${(floorMs / 1000).toFixed(3)} s in this run: ${(floorMs / verified.ms).toFixed(2)} of the rewrap's time`,
    });
    add({
      case: "direct (local-aes, no latency): 1,000,000 records",
      mode: "direct",
      records: 1_000_000,
      ran: 0,
      intermediateKeys: undefined,
      kmsCalls: 0,
      seconds: (timing.ms / 1000) * 100,
      measured: false,
      note: "projected from the 10,000-record rate; not run",
    });
  }
  // Hierarchical: rotateMaster on the 10,000-record store and on the 1,000,000-record store.
  const rotate = async (
    label: string,
    store: KeyStore,
    from: ReturnType<typeof simulatedKms>,
    records: number,
    samples: Buffer[],
    expected: Buffer,
  ) => {
    const counter = { calls: 0 };
    const to = simulatedKms({ latencyMs: KMS_LATENCY_MS, oldKeys: [from.key], counter });
    const report = await rotateMaster(store, {
      from: from.provider,
      to: to.provider,
      concurrency: ROTATE_CONCURRENCY,
    });
    // Old records still open with only the new master key configured.
    const reader = new Envelope({
      encrypt: hierarchicalProvider({
        master: simulatedKms({ latencyMs: 0, key: to.key }).provider,
        store,
      }),
    });
    for (const s of samples)
      if (!(await reader.decrypt(s, { context: CONTEXT })).equals(expected))
        throw new Error("record did not open after rotateMaster");
    add({
      case: `hierarchical rotateMaster (10 ms KMS): ${label}`,
      mode: "hierarchical",
      records,
      ran: 0,
      intermediateKeys: report.total,
      kmsCalls: counter.calls,
      seconds: report.durationMs / 1000,
      measured: true,
      note: `${report.total} intermediate keys rewrapped (${report.native} native), no record touched; ${samples.length} old records then opened with the new master only`,
    });
  };
  {
    const master = simulatedKms({ latencyMs: 0 });
    const store = memoryKeyStore();
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({
        master: master.provider,
        store,
        rotateAfter: { uses: 100_000 },
      }),
    });
    const samples: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const s = await envelope.encrypt(plaintext, { context: CONTEXT, output: "binary" });
      if (i % 100 === 0) samples.push(s);
    }
    await rotate("10,000 records", store, master, 10_000, samples, plaintext);
  }
  await rotate(
    `${big.records.toLocaleString("en-US")} records`,
    big.store,
    big.master,
    big.records,
    big.samples,
    big.plaintext,
  );
  return results;
}

/**
 * Milliseconds for `n` rounds of the primitives a body-verified local-aes rewrap needs per
 * value, called bare: AES-KW unwrap and wrap, HKDF-SHA256 (three HMACs) and an AES-256-GCM
 * verify of a body of `size` bytes.
 */
function cryptoFloorMs(n: number, size: number): number {
  const kek = randomBytes(32);
  const dataKey = randomBytes(32);
  const iv = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
  const kw = createCipheriv("id-aes256-wrap", kek, iv);
  const wrapped = Buffer.concat([kw.update(dataKey), kw.final()]);
  const gcm = createCipheriv("aes-256-gcm", dataKey, Buffer.alloc(12));
  gcm.setAAD(Buffer.alloc(48));
  const body = Buffer.concat([gcm.update(Buffer.alloc(size)), gcm.final(), gcm.getAuthTag()]);
  const info = Buffer.from("envelope-hkdf");
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const unwrap = createDecipheriv("id-aes256-wrap", kek, iv);
    const key = Buffer.concat([unwrap.update(wrapped), unwrap.final()]);
    const wrap = createCipheriv("id-aes256-wrap", kek, iv);
    Buffer.concat([wrap.update(key), wrap.final()]);
    const prk = createHmac("sha256", iv).update(key).digest();
    const t1 = createHmac("sha256", prk).update(info).digest();
    createHmac("sha256", prk).update(t1).update(info).digest();
    const check = createDecipheriv("aes-256-gcm", t1, Buffer.alloc(12));
    check.setAAD(Buffer.alloc(48));
    check.setAuthTag(body.subarray(-16));
    check.update(body.subarray(0, -16));
    try {
      check.final();
    } catch {
      // wrong key on purpose (t1 is not the body's key): the tag check still runs in full
    }
  }
  return performance.now() - start;
}
