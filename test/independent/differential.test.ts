// Differential check: the spec-only decoder (./decoder.ts) and @envelope/core (public API
// only) must reach the same outcome — the same plaintext or the same error code — on
// systematic mutations of every positive per-value vector (truncation at every length, one
// byte set to 00 / ff / bit 0 / bit 7 flipped at every offset, one byte appended) and on
// context variations. A disagreement means the spec and the library differ somewhere.
//
// Run: pnpm exec vitest run test/independent/differential.test.ts
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Envelope, localAesProvider } from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, expect, it } from "vitest";
import { decrypt, localAes, localRsa, type Provider, SpecError } from "./decoder.js";

const VECTORS = fileURLToPath(new URL("../../packages/core/test/vectors/", import.meta.url));

interface Vector {
  id: string;
  kind: string;
  envelopeHex?: string;
  envelopeText?: string;
  keys: {
    localAes?: { keyHex: string }[];
    localRsa?: { privateKeyPem: string }[];
  };
  decrypt: { context?: Record<string, string>; trustedSigners?: string[] };
}

type Outcome = { ok: true; pt: Buffer } | { ok: false; code: string };

function ours(
  sealed: Buffer | string,
  providers: Provider[],
  v: Vector,
  context?: Record<string, string>,
): Outcome {
  try {
    const r = decrypt(sealed, {
      providers,
      context,
      trustedSigners: v.decrypt.trustedSigners?.map((h) => Buffer.from(h, "hex")),
    });
    return { ok: true, pt: r.plaintext };
  } catch (e) {
    if (e instanceof SpecError) return { ok: false, code: e.code };
    throw e;
  }
}

async function theirs(
  env: Envelope,
  sealed: Buffer | string,
  context?: Record<string, string>,
): Promise<Outcome> {
  try {
    const pt = await env.decrypt(sealed, context === undefined ? {} : { context });
    return { ok: true, pt: Buffer.from(pt as Uint8Array) };
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code ?? `(no code: ${(e as Error).name})` };
  }
}

const same = (a: Outcome, b: Outcome) =>
  a.ok && b.ok ? a.pt.equals(b.pt) : !a.ok && !b.ok && a.code === b.code;
const show = (o: Outcome) => (o.ok ? "opened" : o.code);

function libraryClient(v: Vector): Envelope {
  const providers = [];
  if (v.keys.localRsa) {
    providers.push(
      localRsaProvider({ keys: v.keys.localRsa.map((k) => ({ pem: k.privateKeyPem })) }),
    );
  }
  if (v.keys.localAes) {
    providers.push(
      localAesProvider({ keys: v.keys.localAes.map((k) => Buffer.from(k.keyHex, "hex")) }),
    );
  }
  const [first, ...rest] = providers;
  return new Envelope({
    encrypt: first,
    decrypt: rest,
    cache: false,
    ...(v.decrypt.trustedSigners
      ? { trustedSigners: v.decrypt.trustedSigners.map((h) => Buffer.from(h, "hex")) }
      : {}),
  } as unknown as ConstructorParameters<typeof Envelope>[0]);
}

function specProviders(v: Vector): Provider[] {
  const out: Provider[] = [];
  if (v.keys.localRsa) out.push(localRsa(v.keys.localRsa.map((k) => k.privateKeyPem)));
  if (v.keys.localAes) out.push(localAes(v.keys.localAes.map((k) => Buffer.from(k.keyHex, "hex"))));
  return out;
}

// Every byte of the header part (version … entries: where the order of checks lives) is
// mutated; past it, the RSA-wrapped keys, contexts and bodies every 17th byte, which keeps the
// run to seconds in the default suite. ENVELOPE_DIFFERENTIAL=full mutates every byte (~70 s).
const FULL = process.env.ENVELOPE_DIFFERENTIAL === "full";
const HEADER_BYTES = 120;

function* mutations(bytes: Buffer): Generator<[string, Buffer]> {
  for (let n = 0; n < bytes.length; n += FULL || n < HEADER_BYTES ? 1 : 17)
    yield [`truncate to ${n}`, bytes.subarray(0, n)];
  yield ["append 00", Buffer.concat([bytes, Buffer.from([0])])];
  for (let i = 0; i < bytes.length; i += FULL || i < HEADER_BYTES ? 1 : 17) {
    for (const [name, f] of [
      ["set 00", () => 0x00],
      ["set ff", () => 0xff],
      ["flip bit 0", (x: number) => x ^ 0x01],
      ["flip bit 7", (x: number) => x ^ 0x80],
    ] as const) {
      const m = Buffer.from(bytes);
      m[i] = f(m[i] as number);
      if (!m.equals(bytes)) yield [`byte ${i} ${name}`, m];
    }
  }
}

const positives: { family: string; v: Vector }[] = [];
for (const family of ["v1", "signed", "padded", "suite3"]) {
  const dir = join(VECTORS, family);
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith(".json"))
    .sort()) {
    const v = JSON.parse(readFileSync(join(dir, f), "utf8")) as Vector;
    if (v.kind === "positive" && (v.envelopeHex || v.envelopeText)) positives.push({ family, v });
  }
}

// The one FORMAT.md value of the stream family: a stream key envelope (flags bit 1), which
// decrypt refuses with ENVELOPE_WRONG_PURPOSE; its mutations exercise the order of checks
// around the purpose bit (§2.1, §2.2, §13).
{
  const j = JSON.parse(readFileSync(join(VECTORS, "stream/streaming-purpose.json"), "utf8"));
  positives.push({
    family: "stream",
    v: {
      id: "streaming-purpose keyEnvelopeViaDecrypt",
      kind: "negative",
      envelopeHex: j.keyEnvelopeViaDecrypt.envelope,
      keys: { localAes: [{ keyHex: j.localAesKeyHex }] },
      decrypt: { context: j.keyEnvelopeViaDecrypt.context },
    },
  });
}

describe("spec decoder and @envelope/core agree on mutated vectors", () => {
  for (const { family, v } of positives) {
    it(`${family}/${v.id}`, { timeout: 300_000 }, async () => {
      const env = libraryClient(v);
      const providers = specProviders(v);
      const mismatches: string[] = [];
      let checks = 0;
      const check = async (
        label: string,
        sealed: Buffer | string,
        context?: Record<string, string>,
      ) => {
        if (++checks % 50 === 0) await new Promise((r) => setImmediate(r)); // keep the worker RPC alive
        const a = ours(sealed, providers, v, context);
        const b = await theirs(env, sealed, context);
        if (!same(a, b)) mismatches.push(`${label}: spec ${show(a)} / library ${show(b)}`);
      };
      const base =
        v.envelopeHex !== undefined
          ? Buffer.from(v.envelopeHex, "hex")
          : (v.envelopeText as string);
      // context variations on the unmodified value
      const ctx = v.decrypt.context;
      for (const [label, c] of [
        ["as given", ctx],
        ["none", undefined],
        ["{}", {}],
        ["extra key", { ...(ctx ?? {}), zz: "1" }],
        ["empty value", { ...(ctx ?? {}), a: "" }],
      ] as const) {
        await check(`context ${label}`, base, c as Record<string, string> | undefined);
      }
      if (typeof base === "string") {
        for (let n = 0; n < base.length; n++)
          await check(`text truncate to ${n}`, base.slice(0, n), ctx);
        for (const ch of ["A", "_", "-", "+", "=", " "]) {
          for (let i = 0; i < base.length; i += 7) {
            await check(`text char ${i} -> ${ch}`, base.slice(0, i) + ch + base.slice(i + 1), ctx);
          }
        }
      } else {
        let i = 0;
        for (const [label, m] of mutations(base)) {
          await check(label, m, ctx);
          // the same bytes in the text form (§9), for every 4th mutation
          if (i++ % 4 === 0)
            await check(`${label} (text form)`, `ev1:${m.toString("base64url")}`, ctx);
        }
      }
      expect(mismatches).toEqual([]);
    });
  }
});
