import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileKeyStore, hierarchicalProvider, verifyKeyStore } from "../src/index.js";
import { countingMaster } from "./helpers.js";

const context = { id: "7" };
let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hierarchical-"));
  path = join(dir, "keys.json");
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function seeded() {
  const master = countingMaster();
  const store = await fileKeyStore({ path, create: true });
  const envelope = new Envelope({
    encrypt: hierarchicalProvider({ master: master.provider, store, rotateAfter: { uses: 2 } }),
  });
  const sealed = await Promise.all([1, 2, 3].map((i) => envelope.encrypt(`v${i}`, { context })));
  return { master, sealed };
}

describe("fileKeyStore", () => {
  it("persists records; a reopened store opens old envelopes; no temp files are left", async () => {
    const { master, sealed } = await seeded();
    const reopened = await fileKeyStore({ path });
    expect(await reopened.list()).toHaveLength(2);
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: reopened }),
    });
    expect(await envelope.decrypt(sealed[2]!, { context, as: "text" })).toBe("v3");
    expect(await readdir(dir)).toEqual(["keys.json"]);
    expect((await verifyKeyStore(reopened, { masters: [master.provider] })).ok).toBe(2);
  });

  it("refuses to start when the file is missing, unless create is set", async () => {
    const error = await fileKeyStore({ path }).catch((e) => e);
    expect(error.code).toBe("ENVELOPE_BAD_KEY");
    expect(error.message).toMatch(/does not exist.*backup/s);
  });

  it.each([
    ["truncated JSON", (text: string) => text.slice(0, text.length / 2)],
    [
      "a changed wrapped key",
      (text: string) =>
        text.replace(/"wrapped": "(.)/, (_m, c) => `"wrapped": "${c === "A" ? "B" : "A"}`),
    ],
    [
      "a changed creation time",
      (text: string) =>
        text.replace(/"createdAt": (\d)/, (_m, d) => `"createdAt": ${(Number(d) + 1) % 10}`),
    ],
    ["a removed field", (text: string) => text.replace(/"keyCheck": "[0-9a-f]+",/, "")],
    ["another document", () => JSON.stringify({ hello: "world" })],
    [
      "a duplicated record",
      (text: string) => {
        const doc = JSON.parse(text);
        doc.keys.push(doc.keys[0]);
        return JSON.stringify(doc);
      },
    ],
  ])("refuses to start on %s with ENVELOPE_BAD_KEY", async (_name, corrupt) => {
    await seeded();
    await writeFile(path, corrupt(await readFile(path, "utf8")));
    const error = await fileKeyStore({ path }).catch((e) => e);
    expect(error.code).toBe("ENVELOPE_BAD_KEY");
    expect(error.message).toMatch(/backup/);
  });

  it("compare-and-swap rejects a stale version", async () => {
    await seeded();
    const store = await fileKeyStore({ path });
    const [record] = await store.list();
    expect(await store.update(record!.id, record!.version, record!)).toBe(true);
    expect(await store.update(record!.id, record!.version, record!)).toBe(false);
    await expect((await fileKeyStore({ path })).get(record!.id)).resolves.toMatchObject({
      version: 2,
    });
  });

  it("serializes concurrent writes without losing one", async () => {
    const master = countingMaster();
    const store = await fileKeyStore({ path, create: true });
    const providers = Array.from({ length: 10 }, () =>
      hierarchicalProvider({ master: master.provider, store }),
    );
    await Promise.all(providers.map((p) => p.rotate()));
    expect(await (await fileKeyStore({ path })).list()).toHaveLength(10);
  });
});
