import { randomUUID } from "node:crypto";
import type { WrappedKey } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_REGION_CLIENTS } from "../src/kms-calls.js";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

// An entry names its key's region; with discovery on, a database writer could plant values
// naming a new region each, and the provider built (and kept) one KMS client per region.

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(() => h.close());

const entryIn = (region: string): WrappedKey => ({
  providerId: "aws-kms",
  keyRef: `arn:aws:kms:${region}:111122223333:key/${randomUUID()}`,
  wrapped: new Uint8Array(64).fill(7),
});

describe("aws-kms: clients per region are bounded", () => {
  it(`after ${MAX_REGION_CLIENTS} regions, an entry naming another is refused without a request`, async () => {
    const key = h.kms.createKey();
    const provider = h.provider({ keyId: key.arn, discovery: true, retry: { attempts: 1 } });
    for (let i = 0; i < MAX_REGION_CLIENTS; i++) {
      // Each names a key the server does not have: a typed failure, after one request.
      await failure(provider.unwrap(entryIn(`zz-planted-${i}`), { context: CONTEXT }));
    }
    const before = h.kms.requests.length;
    const refused = await failure(provider.unwrap(entryIn("zz-planted-x"), { context: CONTEXT }));
    expect(refused.code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(refused.message).toMatch(/64 regions.*discovery: \{ accountIds \}/);
    expect(refused.details).toMatchObject({ region: "zz-planted-x" });
    expect(h.kms.requests.length).toBe(before);
    // Its own key's region is always served, even with every other client slot taken.
    const { dataKey, entry } = await provider.generateDataKey!({ context: CONTEXT });
    const opened = await provider.unwrap(entry, { context: CONTEXT });
    expect(Buffer.from(opened).equals(Buffer.from(dataKey))).toBe(true);
  });
});
