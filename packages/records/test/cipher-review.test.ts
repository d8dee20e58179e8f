import { EnvelopeError } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { createRecordCipher } from "../src/index.js";
import { counted, envelopeWith } from "./support.js";

/**
 * Defects an independent review found by following the README literally: each test fails
 * on the code before its fix.
 */

const schema = { table: "records_review", encrypted: ["email", "profile"] } as const;

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<EnvelopeError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("values JSON would turn into {} are refused at seal time (no silent data loss)", () => {
  const users = () => createRecordCipher(envelopeWith(counted()), schema);

  class Opaque {
    #secret = "kept in a private field";
    get secret() {
      return this.#secret;
    }
  }

  it.each([
    ["a Map", new Map([["k", "secret-value"]]), "a Map"],
    ["a Set", new Set([1, 2]), "a Set"],
    ["a WeakMap", new WeakMap(), "a WeakMap"],
    ["a WeakSet", new WeakSet(), "a WeakSet"],
    ["a Promise", Promise.resolve("secret-value"), "a Promise"],
    ["a RegExp", /secret-value/, "a RegExp"],
    ["an Error", new Error("secret-value"), "an Error"],
    ["an ArrayBuffer", new Uint8Array([1, 2]).buffer, "an ArrayBuffer"],
    ["a class instance with no enumerable data", new Opaque(), "no enumerable property"],
    ["a Map inside an object", { tags: new Map([["k", "secret-value"]]) }, "a Map"],
    ["a Set inside an array", [1, new Set(["secret-value"])], "a Set"],
    ["a function inside an object", { f: () => "secret-value" }, "a function"],
  ])("%s: ENVELOPE_BAD_INPUT naming the field, never the value", async (_, value, what) => {
    const e = await errorOf(users().seal({ id: 1, email: "a@b.c", profile: value }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
    expect(e.message).toContain('"profile"');
    expect(e.message).toContain(what);
    expect(e.message).toMatch(/Convert it to a plain object or array/);
    expect(e.details).toMatchObject({ field: "profile" });
    expect(`${e.message} ${JSON.stringify(e)}`).not.toContain("secret-value");
  });

  it("the reviewer's case: a Map and a Set are refused, not stored as {}", async () => {
    const c = createRecordCipher(envelopeWith(counted()), {
      table: "records_review",
      encrypted: ["a", "b"],
    });
    const e = await errorOf(c.seal({ id: 1, a: new Map([["k", "secret"]]), b: new Set([1, 2]) }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
    expect(e.details.field).toBe("a");
  });

  it("update refuses them too", async () => {
    const c = users();
    const row = await c.seal({ id: 2, email: "a@b.c", profile: { x: 1 } });
    const e = await errorOf(c.update(row, { profile: { tags: new Set(["x"]) } }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
  });

  it("keeps what worked: Date, bigint, Buffer, Uint8Array, plain, null-prototype, toJSON, nested typed arrays", async () => {
    const c = users();
    const nullProto = Object.assign(Object.create(null), { a: 1 });
    class WithJson {
      toJSON() {
        return { kind: "with-json" };
      }
    }
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    const cases: [unknown, unknown][] = [
      [new Date(5), new Date(5)],
      [12n, 12n],
      [Buffer.from("hi"), Buffer.from("hi")],
      [new Uint8Array([1, 2]), Buffer.from([1, 2])],
      [{ a: [1, { b: null }] }, { a: [1, { b: null }] }],
      [nullProto, { a: 1 }],
      [new WithJson(), { kind: "with-json" }],
      [new Point(1, 2), { x: 1, y: 2 }],
      [
        { when: new Date(0), bytes: Buffer.from([7]) },
        JSON.parse(JSON.stringify({ when: new Date(0), bytes: Buffer.from([7]) })),
      ],
      [{ u: new Uint8Array([3]) }, { u: { 0: 3 } }],
    ];
    for (const [i, [value, expected]] of cases.entries()) {
      const row = await c.seal({ id: `k${i}`, profile: value });
      expect((await c.open(row)).profile).toEqual(expected);
    }
    // A Map whose owner's toJSON replaces it is not stored, hence not lost.
    const replaced = { map: new Map([["a", 1]]), toJSON: () => ({ a: 1 }) };
    const row = await c.seal({ id: "tj", profile: replaced });
    expect((await c.open(row)).profile).toEqual({ a: 1 });
  });
});
