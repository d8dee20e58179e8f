import { ConfigError } from "../errors.js";

/** The scheme of a key URI (`aws-kms://…` → `aws-kms`), or a ConfigError naming the field. */
export function uriScheme(uri: string, field: string): string {
  const match = /^([a-z][a-z0-9-]*):\/\//.exec(uri);
  if (!match) {
    // A value without any "scheme:" may be a key pasted in place of a URI: don't echo it.
    const shown = String(uri).includes(":") ? `"${redactUri(uri)}"` : "the value (not shown)";
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${field}: ${shown} is not a key URI. Use e.g. local-rsa:///run/secrets/enc_key.pem, aws-kms://arn:aws:kms:…, azure-kv://<vault>.vault.azure.net/keys/<name>, vault-transit://<host:port>/<mount>/keys/<name>.`,
      { details: { field } },
    );
  }
  return match[1]!;
}

/**
 * A URI with any query string, fragment and userinfo removed, for messages: URIs are not
 * secret, but someone may paste a token into one.
 */
export function redactUri(uri: string): string {
  const text = String(uri)
    .split(/[?#]/)[0]!
    .replace(/\/\/[^/@]*@/, "//…@");
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
