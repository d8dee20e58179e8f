import { ConfigError } from "@envelope/core";
import { PROVIDER_ID } from "./constants.js";
import type { RsaKeySource } from "./sources.js";

const SHAPES =
  "Use local-rsa:///absolute/path/key.pem (a PEM file or a directory of *.pem), or local-rsa://env/VAR_NAME (PEM in an env var), optionally with ?passphrase-env=VAR or ?passphrase-file=/path, and ?threads=auto (or a count) to unwrap on worker threads.";

/**
 * Parses a local-rsa key URI into a key source. The passphrase itself never goes in a
 * URI (URIs end up in logs); only where to read it.
 *
 * @example
 * parseLocalRsaUri("local-rsa:///run/secrets/enc_key.pem?passphrase-file=/run/secrets/enc_pass");
 * // { path: "/run/secrets/enc_key.pem", passphraseFile: "/run/secrets/enc_pass" }
 */
export function parseLocalRsaUri(uri: string): RsaKeySource {
  const prefix = `${PROVIDER_ID}://`;
  if (typeof uri !== "string" || !uri.startsWith(prefix))
    throw bad("the URI must start with local-rsa://.");
  const rest = uri.slice(prefix.length);
  const q = rest.indexOf("?");
  const location = q < 0 ? rest : rest.slice(0, q);
  const source: RsaKeySource = {};
  if (location.startsWith("/")) {
    source.path = decode(location);
    if (source.path === "/") throw bad("the path is empty.");
  } else if (location.startsWith("env/")) {
    const name = location.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw bad("after env/ comes an environment variable name (letters, digits, _).");
    source.env = name;
  } else {
    throw bad(
      `"${location.split("/")[0]}" is not a location (relative paths and hosts are not allowed).`,
    );
  }
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    // threads is a provider option (see uriThreads), not part of the key source.
    if (params.getAll("threads").length > 1) throw bad("give threads once.");
    params.delete("threads");
    const names = [...params.keys()];
    for (const name of names) {
      if (name !== "passphrase-env" && name !== "passphrase-file") {
        throw bad(
          name === "passphrase"
            ? "never put a passphrase in a URI; use ?passphrase-env=VAR or ?passphrase-file=/path."
            : `unknown query parameter "${name}".`,
        );
      }
    }
    if (names.length > 1)
      throw bad("give one passphrase source: passphrase-env or passphrase-file.");
    const env = params.get("passphrase-env");
    const file = params.get("passphrase-file");
    if (env !== null) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env))
        throw bad("passphrase-env must be an environment variable name.");
      source.passphraseEnv = env;
    }
    if (file !== null) {
      if (!file.startsWith("/")) throw bad("passphrase-file must be an absolute path.");
      source.passphraseFile = file;
    }
  }
  return source;
}

function decode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `local-rsa: the URI path has a broken %-escape. ${SHAPES}`,
      { cause },
    );
  }
}

function bad(problem: string): ConfigError {
  return new ConfigError("ENVELOPE_BAD_CONFIG", `local-rsa: bad key URI: ${problem} ${SHAPES}`);
}

/**
 * The `?threads=` setting of a local-rsa key URI (`auto`, a count, `off`), or undefined
 * when the URI has none. The value is checked by the provider.
 *
 * @example
 * uriThreads("local-rsa:///run/secrets/enc_key.pem?threads=auto"); // "auto"
 */
export function uriThreads(uri: string): string | undefined {
  const q = uri.indexOf("?");
  if (q < 0) return undefined;
  return new URLSearchParams(uri.slice(q + 1)).get("threads") ?? undefined;
}
