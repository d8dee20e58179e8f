import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "../src/exit-codes.js";
import { keyAge, parseDays } from "../src/rotation/key-age.js";
import { renderStatus, type StatusReport, statusExitCode } from "../src/rotation/status-report.js";

const DAY = 86_400_000;
const now = Date.parse("2026-06-01T00:00:00Z");
const ago = (days: number) => new Date(now - days * DAY).toISOString();
const thresholds = { warnDays: 80, dueDays: 90 };

describe("keyAge", () => {
  it.each([
    [0, 0, "ok"],
    [79.9, 79, "ok"],
    [80, 80, "WARN"],
    [89.99, 89, "WARN"],
    [90, 90, "DUE"],
    [400, 400, "DUE"],
  ] as const)("%d days old: ageDays %d, %s", (days, ageDays, state) => {
    expect(keyAge(ago(days), now, thresholds)).toEqual({ ageDays, state });
  });

  it("compares the fractional age, shows whole days (half a day past a 0.25-day due age is DUE)", () => {
    expect(keyAge(ago(0.5), now, { warnDays: 0.1, dueDays: 0.25 })).toEqual({
      ageDays: 0,
      state: "DUE",
    });
  });

  it("no creation time: unknown age", () => {
    expect(keyAge(undefined, now, thresholds)).toEqual({
      ageDays: undefined,
      state: "unknown age",
    });
  });
});

describe("parseDays", () => {
  it("accepts positive numbers of days, fractions too; undefined stays undefined", () => {
    expect(parseDays("90", "--due-days")).toBe(90);
    expect(parseDays("0.5", "--due-days")).toBe(0.5);
    expect(parseDays(undefined, "--due-days")).toBeUndefined();
  });
  it.each(["0", "-3", "", " ", "abc", "Infinity"])(
    "refuses %j with a typed error naming the flag",
    (v) => {
      expect(() => parseDays(v, "--warn-days")).toThrow(
        expect.objectContaining({ code: "ENVELOPE_BAD_INPUT", details: { field: "--warn-days" } }),
      );
    },
  );
});

const report = (over: Partial<StatusReport> = {}): StatusReport => ({
  config: "/app/envelope.config.json",
  sources: ["/app/envelope.config.json"],
  warnDays: 80,
  dueDays: 90,
  keys: [
    {
      role: "encrypt",
      key: "local-rsa:///keys/new.pem",
      provider: "local-rsa",
      keyRef: "abc",
      createdAt: ago(3),
      ageDays: 3,
      state: "ok",
    },
  ],
  column: undefined,
  rotationDue: false,
  strandedValues: 0,
  ...over,
});

describe("statusExitCode", () => {
  it("without --check: always OK, even with a due key and stranded values", () => {
    expect(statusExitCode(report({ rotationDue: true, strandedValues: 4 }), false)).toBe(
      EXIT_CODES.OK,
    );
  });
  it("--check: stranded values beat a due key, a due key beats OK", () => {
    expect(statusExitCode(report({ rotationDue: true, strandedValues: 1 }), true)).toBe(
      EXIT_CODES.STRANDED,
    );
    expect(statusExitCode(report({ rotationDue: true }), true)).toBe(EXIT_CODES.ROTATION_DUE);
    expect(statusExitCode(report(), true)).toBe(EXIT_CODES.OK);
  });
});

describe("renderStatus", () => {
  it("one line per key with its age and advice", () => {
    const text = renderStatus(
      report({
        keys: [
          { ...report().keys[0]!, state: "DUE", ageDays: 91 },
          {
            role: "decrypt",
            key: "k2",
            provider: "local-rsa",
            keyRef: "def",
            createdAt: undefined,
            ageDays: undefined,
            state: "unknown age",
          },
        ],
      }),
    );
    expect(text).toContain("(warn at 80 days, due at 90)");
    expect(text).toContain(
      "encrypt local-rsa:abc  91 day(s) old  local-rsa:///keys/new.pem  ← DUE",
    );
    expect(text).toContain("decrypt local-rsa:def  age unknown  k2");
  });

  it("an old decrypt-only key is not told to rotate: it is told to be retired", () => {
    const old = {
      role: "decrypt" as const,
      key: "local-rsa:///keys/old.pem",
      provider: "local-rsa",
      keyRef: "def",
      createdAt: ago(120),
      ageDays: 120,
      state: "DUE" as const,
    };
    const text = renderStatus(report({ keys: [report().keys[0]!, old] }));
    const line = text.split("\n").find((l) => l.includes("keys/old.pem"))!;
    expect(line).not.toContain("rotate");
    expect(line).toContain("← old decrypt key: rewrap its values, then `envelope retire` it");
    expect(statusExitCode(report({ keys: [report().keys[0]!, old] }), true)).toBe(EXIT_CODES.OK);
  });

  it("a column: values per key reference, stranded ones flagged, key references from the column escaped", () => {
    const evil = "local-rsa:\u001b[31mred";
    const text = renderStatus(
      report({
        column: {
          table: "users",
          columns: ["email"],
          byKeyRef: { "local-rsa:abc": 5, [evil]: 2 },
          nulls: 1,
          invalid: { ENVELOPE_BAD_FORMAT: 3 },
          scanned: 11,
          stranded: { [evil]: 2 },
        },
        strandedValues: 2,
      }),
    );
    expect(text).toContain("users.email: 11 rows, 1 null value(s)");
    expect(text).toContain("  local-rsa:abc: 5 value(s)\n");
    expect(text).toContain("← NOT in the config");
    expect(text).toContain("STRANDED: 2 value(s)");
    expect(text).toContain("not an envelope (ENVELOPE_BAD_FORMAT): 3 value(s)");
    expect(text).not.toContain("\u001b");
  });
});
