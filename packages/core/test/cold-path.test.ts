import { randomBytes } from "node:crypto";
import { type EncryptionContext, Envelope, encodeContext } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { ContextMemo } from "../src/cache/context-memo.js";
import { snapshotContext } from "../src/format/context.js";
import { expectEnvelopeError, rejection } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const CONTEXT = { table: "users", column: "email", id: "42" };

describe("cold decrypt (issue 15, item 2)", () => {
  it("builds each entry's unwrap-cache key once (the warm peek and the unwrap share it)", async () => {
    let built = 0;
    const provider = countingProvider({
      kmsContext: (c) => {
        built++;
        return c.table ?? "";
      },
    });
    const sealed = await new Envelope({ encrypt: provider, cache: false }).encrypt(
      randomBytes(16),
      {
        context: CONTEXT,
      },
    );
    // What the provider's own unwrap asks for, with no cache in the way.
    built = 0;
    await new Envelope({ encrypt: provider, cache: false }).decrypt(sealed, { context: CONTEXT });
    const byUnwrap = built;
    built = 0;
    const cached = new Envelope({ encrypt: provider });
    await cached.decrypt(sealed, { context: CONTEXT });
    expect(built).toBe(byUnwrap + 1);
    expect(cached.cacheStats().misses).toBe(1);
  });
});

describe("configured providers", () => {
  it("a provider listed under both encrypt and decrypt is tried once per entry", async () => {
    // The KMS binds the row id: unwrapping under another id fails at the provider.
    const provider = countingProvider({ kmsContext: (c) => c.id ?? "" });
    const sealed = await new Envelope({ encrypt: provider, cache: false }).encrypt("x", {
      context: CONTEXT,
    });
    const envelope = new Envelope({ encrypt: provider, decrypt: [provider], cache: false });
    provider.reset();
    const failed = await rejection(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
    expect((failed as { code?: string }).code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(provider.calls.unwrap).toBe(1);
  });
});

describe("ContextMemo (issue 15, item 5)", () => {
  const snap = (c: EncryptionContext) => snapshotContext(c);

  it("returns the canonical bytes of every context, whether it hits or misses", () => {
    const memo = new ContextMemo();
    const contexts: EncryptionContext[] = [
      CONTEXT,
      { ...CONTEXT },
      { ...CONTEXT, id: "43" },
      { id: "43", column: "email", table: "users" },
      { table: "users", column: "email" },
      { table: "users", column: "email", id: "42", extra: "x" },
      { table: "ünïcode", column: "email", id: "42" },
      {},
      CONTEXT,
    ];
    for (const c of contexts) expect(memo.encode(snap(c))).toEqual(encodeContext(c));
    expect(memo.encode(undefined)).toEqual(encodeContext(undefined));
  });

  it("serves the same bytes only for the same pairs", () => {
    const memo = new ContextMemo();
    const first = memo.encode(snap(CONTEXT));
    expect(memo.encode(snap({ ...CONTEXT }))).toBe(first);
    expect(memo.encode(snap({ ...CONTEXT, id: "4" }))).not.toEqual(first);
  });

  it("still refuses a bad context after a good one with the same keys", () => {
    const memo = new ContextMemo();
    memo.encode(snap(CONTEXT));
    const bad = { ...CONTEXT, id: 42 } as unknown as EncryptionContext;
    expect(() => memo.encode(snap(bad))).toThrow(/value of "id" is a number/);
  });

  it("a caller mutating its context object between calls gets the new context", async () => {
    const envelope = new Envelope({ encrypt: countingProvider() });
    const context: Record<string, string> = { ...CONTEXT };
    const sealed = await envelope.encrypt("secret", { context });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe("secret");
    context.id = "43";
    expectEnvelopeError(
      await rejection(envelope.decrypt(sealed, { context })),
      undefined,
      "ENVELOPE_DECRYPT_FAILED",
    );
    context.id = "42";
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe("secret");
  });
});
