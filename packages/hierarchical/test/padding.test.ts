import { Envelope, inspectEnvelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { hierarchicalProvider, memoryKeyStore, rotateMaster } from "../src/index.js";
import { rotatingMasters } from "./helpers.js";

const context = { table: "users", column: "ssn", id: "7" };

describe("length padding in hierarchical mode", () => {
  it("padded values open before and after a master rotation, bytes untouched", async () => {
    const { old, next, newOnly } = rotatingMasters();
    const store = memoryKeyStore();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: old, store }),
      pad: "pii",
    });
    const values = ["078-05-1120", "Ann", ""];
    const sealed = await Promise.all(values.map((v) => writer.encrypt(v, { context })));
    expect(new Set(sealed.map((s) => s.length)).size).toBe(1);
    expect(sealed.every((s) => inspectEnvelope(s).padded)).toBe(true);

    const report = await rotateMaster(store, { from: old, to: next });
    expect(report.failed).toEqual([]);
    // A fresh process that knows only the new master reads the same stored bytes.
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master: newOnly, store }) });
    const opened = await Promise.all(sealed.map((s) => reader.decrypt(s, { context, as: "text" })));
    expect(opened).toEqual(values);
  });
});
