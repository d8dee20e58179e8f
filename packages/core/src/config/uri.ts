import { ConfigError } from "../errors.js";

/** The scheme of a key URI (`aws-kms://…` → `aws-kms`), or a ConfigError naming the field. */
export function uriScheme(uri: string, field: string): string {
  const match = /^([a-z][a-z0-9-]*):\/\//.exec(uri);
  if (!match) {
    // A value without any "scheme:" may be a key pasted in place of a URI: don't echo it.
    const shown = String(uri).includes(":") ? `"${redactUri(uri)}"` : "the value (not shown)";
    // e.g. "local-aes:<hex key>": redactUri masks the key-like part.
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${field}: ${shown} is not a key URI. Use e.g. local-rsa:///run/secrets/enc_key.pem, aws-kms://arn:aws:kms:…, azure-kv://<vault>.vault.azure.net/keys/<name>, vault-transit://<host:port>/<mount>/keys/<name>.`,
      { details: { field } },
    );
  }
  return match[1]!;
}

/**
 * A URI for messages: query string, fragment and userinfo removed, and every part that
 * could be a secret (a key or token pasted into it) replaced by `…`, so that
 * `local-aes:///<64 hex>` shows as `local-aes:///…`. What stays: the scheme, hosts,
 * short path segments, ARNs and key ids (UUIDs, 32-hex versions). Capped at 200 chars.
 *
 * @example
 * redactUri("vault-transit://user:pass@vault:8200/transit/keys/pii?token=s.x") // "vault-transit://…@vault:8200/transit/keys/pii"
 */
export function redactUri(uri: string): string {
  const text = redactSecrets(
    String(uri)
      .split(/[?#]/)[0]!
      .replace(/\/\/[^/@]*@/, "//…@"),
  );
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// Public identifiers that are long but not secret: UUIDs (AWS key ids), AWS multi-region
// key ids, and 32-hex segments (Azure key versions).
const PUBLIC_IDS =
  /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32}|(?<=^|\/)[0-9a-fA-F]{32}(?=\/|$)/g;
const KEY_ALPHABET_RUN = /[A-Za-z0-9+/=_-]+/g;
// A 32-byte key is 64 hex, 43–44 base64 or 52–56 base32 characters; tokens are longer.
const SECRET_LENGTH = 40;

/**
 * `text` with every run of key-alphabet characters that could be a key or token replaced
 * by `…`: a `/`-separated piece of 40 or more characters, or a 40+ character stretch of the
 * standard base64 alphabet (which has `/` but no `-` or `_`) that mixes upper and lower
 * case: a base64 key with `/` in it. Over-redacts long paths rather than risk
 * echoing a key; a path whose `/`-pieces and `-`-separated words are all shorter than 40
 * (`/tmp/tmp.AbC123/keys/envelope-rsa-20261206-025300-123-a1b2c3.pem`) stays readable.
 */
export function redactSecrets(text: string): string {
  return text.replace(KEY_ALPHABET_RUN, (run) => {
    if (run.length < SECRET_LENGTH) return run;
    const rest = run.replace(PUBLIC_IDS, "");
    const longPiece = rest.split("/").some((piece) => piece.length >= SECRET_LENGTH);
    // A standard-base64 key lies whole inside one stretch between `-` / `_` characters.
    // Upper and lower case both present is enough: 1 random 32-byte base64 key in ~1,400 has
    // no digit (it leaked when a digit was required too), and one lacking a case is ~1e-10.
    const random = rest
      .split(/[-_]/)
      .some((s) => s.length >= SECRET_LENGTH && /[A-Z]/.test(s) && /[a-z]/.test(s));
    return longPiece || random ? "…" : run;
  });
}
