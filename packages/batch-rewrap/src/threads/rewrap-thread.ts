/**
 * A rewrap worker thread: builds its own Envelope and providers from the job's key specs
 * (provider objects cannot cross threads) and rewraps the values each message carries with
 * the same transform the main thread would use (`rewrapTransform`: body verification,
 * `verifyAll`, data keys zeroed by core). It sees sealed values only, never plaintext.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Envelope, type KeyProvider, resolveKey } from "@envelope/core";
import { Limiter } from "../engine/limiter.js";
import { metered } from "../engine/metered.js";
import { rewrapTransform, type Value, type ValueTransform } from "../engine/transform.js";
import {
  pack,
  type RewrapReply,
  type RewrapRequest,
  type ThreadSetup,
  type ThreadStatus,
  toWire,
  unpack,
} from "./wire.js";

const port = parentPort!;
const setup = workerData as ThreadSetup;

async function build(): Promise<{ transform: ValueTransform; limiter: Limiter }> {
  const resolve = (specs: ThreadSetup["to"], field: string) =>
    Promise.all(specs.map((s, i) => resolveKey(s, `${field}[${i}]`, setup.env)));
  const [to, decrypt] = await Promise.all([
    resolve(setup.to, "threads.to"),
    resolve(setup.decrypt, "threads.decrypt"),
  ]);
  // Counted like the main thread's calls (metered), so the job's report counts them too.
  const limiter = new Limiter();
  const label = (p: KeyProvider) => `${p.id}:${p.keyRef}`;
  const targetLabels = new Set(to.map(label));
  const targets = to.map((p) => metered(p, limiter));
  const others = decrypt.filter((p) => !targetLabels.has(label(p))).map((p) => metered(p, limiter));
  const envelope = new Envelope({ encrypt: targets, decrypt: others, cache: false });
  const transform = rewrapTransform(envelope, targets, {
    verifyAll: setup.verifyAll,
    verifyBody: setup.verifyBody,
  });
  return { transform, limiter };
}

const ready = build();
ready.then(
  () => port.postMessage({ ready: true } satisfies ThreadStatus),
  (error) => port.postMessage({ fatal: toWire(error) } satisfies ThreadStatus),
);

port.on("message", async (request: RewrapRequest) => {
  let settled: PromiseSettledResult<{ value: Value }>[];
  let calls = 0;
  try {
    const { transform, limiter } = await ready;
    const before = limiter.calls;
    settled = await Promise.allSettled(
      request.values.map((v, i) => transform.apply(unpack(v), request.contexts[i]!, "binary")),
    );
    calls = limiter.calls - before;
  } catch (error) {
    // The keys could not be built (reported as fatal too): every value fails with why.
    settled = request.values.map(() => ({ status: "rejected", reason: error }));
  }
  const { values, transfer } = pack(
    settled.map((s) => (s.status === "fulfilled" ? s.value.value : null)),
  );
  const reply: RewrapReply = {
    id: request.id,
    values,
    errors: settled.map((s) => (s.status === "rejected" ? toWire(s.reason) : null)),
    calls,
  };
  port.postMessage(reply, transfer);
});
