import { createEnvelope, type Envelope, type KeyProvider, resolveKey } from "@envelope/core";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { type LoadedConfig, loadConfig, specList } from "./load.js";

/** Config + Envelope client + resolved providers, built once per command. */
export interface Keys {
  config: LoadedConfig;
  envelope: Envelope;
  encrypt: KeyProvider[];
  decrypt: KeyProvider[];
}

/** The config (file, env, flags) and the Envelope client and key providers it names. */
export async function loadKeys(ctx: CliContext, flags: GlobalFlags): Promise<Keys> {
  const config = await loadConfig(flags, ctx.io.env, ctx.io.cwd);
  const envelope = await createEnvelope(config.library, ctx.io.env);
  const encrypt = await Promise.all(
    specList(config.library.encrypt).map((s, i) => resolveKey(s, `encrypt[${i}]`, ctx.io.env)),
  );
  const decrypt = await Promise.all(
    specList(config.library.decrypt).map((s, i) => resolveKey(s, `decrypt[${i}]`, ctx.io.env)),
  );
  return { config, envelope, encrypt, decrypt };
}

/** `--to` URIs if given, else the config's encrypting keys. */
export async function targetKeys(
  ctx: CliContext,
  keys: Keys,
  to: string[] | undefined,
): Promise<KeyProvider[]> {
  if (!to?.length) return keys.encrypt;
  return Promise.all(to.map((uri, i) => resolveKey(uri, `to[${i}]`, ctx.io.env)));
}
