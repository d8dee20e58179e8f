import { Envelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import {
  formatVerifyReport,
  hierarchicalProvider,
  memoryKeyStore,
  verifyKeyStore,
} from "../src/index.js";
import { countingMaster } from "./helpers.js";

describe("verifyKeyStore", () => {
  it("reports every record: ok, missing master, wrong key behind a valid checksum", async () => {
    const master = countingMaster();
    const store = memoryKeyStore();
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store, rotateAfter: { uses: 1 } }),
    });
    for (let i = 0; i < 3; i++) await envelope.encrypt("x");
    const ok = await verifyKeyStore(store, { masters: [master.provider] });
    expect(ok).toMatchObject({ total: 3, ok: 3, failures: [], unwrapped: true });
    expect(Object.values(ok.byMaster)).toEqual([3]);

    const checksumOnly = await verifyKeyStore(store);
    expect(checksumOnly).toMatchObject({ ok: 3, unwrapped: false });
    expect(master.calls.unwrap).toBe(3);

    const other = countingMaster();
    const wrongMaster = await verifyKeyStore(store, { masters: [other.provider] });
    expect(wrongMaster.failures.map((f) => f.code)).toEqual(
      Array(3).fill("ENVELOPE_KEY_NOT_FOUND"),
    );

    // Swap two records' wrapped keys and recompute checksums: only the key check can tell.
    const [a, b] = await store.list();
    const { sealRecord } = await import("../src/record.js");
    await store.update(
      a!.id,
      a!.version,
      sealRecord({ id: a!.id, createdAt: a!.createdAt, master: b!.master, keyCheck: a!.keyCheck }),
    );
    const swapped = await verifyKeyStore(store, { masters: [master.provider] });
    expect(swapped.failures).toEqual([
      expect.objectContaining({ id: a!.id, code: "ENVELOPE_BAD_KEY" }),
    ]);
    expect(formatVerifyReport(swapped)).toMatch(
      /3 intermediate keys, 2 ok, 1 failed[\s\S]*FAILED ik-/,
    );
  });
});
