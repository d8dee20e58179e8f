import { randomBytes } from "node:crypto";
import {
  type AuditEvent,
  configFromEnv,
  createEnvelope,
  Envelope,
  envelopeFromEnv,
  localAesProvider,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { ATTR, METRICS, SPANS } from "../src/index.js";
import { otelHarness } from "./harness.js";

const context = { table: "users", id: "7" };
const oldKey = randomBytes(32).toString("hex");
const newKey = randomBytes(32).toString("hex");
const env = { PII_KEY: newKey, PII_KEY_OLD: oldKey };
const newRef = localAesProvider({ keys: newKey }).keyRef;
const oldRef = localAesProvider({ keys: oldKey }).keyRef;

/** A value sealed under the old key by an uninstrumented client. */
async function oldValue(): Promise<Buffer> {
  return new Envelope({ encrypt: localAesProvider({ keys: oldKey }) }).encrypt("legacy", {
    context,
  });
}

describe("instrumentConfig with createEnvelope / envelopeFromEnv", () => {
  it("createEnvelope: key URIs resolved and instrumented, the caller's audit hook kept", async () => {
    const otel = otelHarness();
    const audited: AuditEvent[] = [];
    const config = await otel.telemetry.instrumentConfig(
      {
        encrypt: "local-aes://env/PII_KEY",
        decrypt: ["local-aes://env/PII_KEY_OLD"],
        onAudit: (e) => audited.push(e),
      },
      env,
    );
    const envelope = await createEnvelope(config, env);
    otel.telemetry.observe(envelope);
    const sealed = await envelope.encrypt("x", { context });
    await envelope.decrypt(await oldValue(), { context });
    await envelope.decrypt(sealed, { context });

    expect(otel.spans().map((s) => [s.name, s.attributes[ATTR.keyRef]])).toEqual([
      [SPANS.wrap, newRef],
      [SPANS.unwrap, oldRef],
      [SPANS.unwrap, newRef],
    ]);
    expect(audited.map((e) => e.operation)).toEqual([
      "wrap",
      "encrypt",
      "unwrap",
      "decrypt",
      "unwrap",
      "decrypt",
    ]);
    expect(await otel.value(METRICS.operations, { [ATTR.operation]: "decrypt" })).toBe(2);
    expect(await otel.value(METRICS.cacheMisses)).toBe(2);
  });

  it("envelopeFromEnv: the same, from ENVELOPE_* variables", async () => {
    const otel = otelHarness();
    const vars = {
      ...env,
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/PII_KEY",
      ENVELOPE_DECRYPT_KEYS: "local-aes://env/PII_KEY_OLD",
    };
    const envelope = await envelopeFromEnv(
      vars,
      await otel.telemetry.instrumentConfig(configFromEnv(vars), vars),
    );
    await envelope.decrypt(await oldValue(), { context });
    expect(otel.spans().map((s) => s.attributes[ATTR.keyRef])).toEqual([oldRef]);
    expect(envelope.describe().decrypt).toEqual([`local-aes:${newRef}`, `local-aes:${oldRef}`]);
  });

  it("reports a bad key spec as createEnvelope would: typed, naming the field, key not echoed", async () => {
    const otel = otelHarness();
    const error = await otel.telemetry
      .instrumentConfig(
        { encrypt: "local-aes://env/PII_KEY", decrypt: ["local-aes://env/NOPE"] },
        env,
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    expect(String((error as Error).message)).toContain("decrypt[0]");
    expect(String((error as Error).message)).not.toContain(newKey);
  });
});
