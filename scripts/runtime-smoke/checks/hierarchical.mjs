// @envelope/hierarchical (not in the brief's core set, but it wraps keys locally with
// AES-KW, which Bun and Deno first lacked): seal, open, and rewrap a value into the mode.
import { randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { check } from "../assert.mjs";

const context = { table: "users", column: "email", id: "5" };

async function hierarchical() {
  const master = localAesProvider({ keys: randomBytes(32) });
  const provider = hierarchicalProvider({ master, store: memoryKeyStore() });
  const envelope = new Envelope({ encrypt: provider, decrypt: [master] });
  const sealed = await envelope.encrypt("h@example.invalid", { context });
  check(
    (await envelope.decrypt(sealed, { context, as: "text" })) === "h@example.invalid",
    "round trip",
  );
  // A value sealed directly under the master key, moved into hierarchical mode (AES-KW).
  const direct = await new Envelope({ encrypt: master }).encrypt("d@example.invalid", { context });
  const moved = await envelope.rewrap(direct, { context });
  check(
    envelope.inspect(moved).entries[0].provider === "hierarchical",
    "rewrapped under an intermediate key",
  );
  check(
    (await envelope.decrypt(moved, { context, as: "text" })) === "d@example.invalid",
    "opens after rewrap",
  );
}

export const hierarchicalChecks = [
  ["hierarchical: intermediate keys in a memory store", hierarchical],
];
