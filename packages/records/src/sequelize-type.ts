import { ConfigError, decodeEnvelope, fromText, isTextForm } from "@envelope/core";
import { DataTypes } from "sequelize";

/** Attribute type key: unknown to every dialect, so Sequelize keeps this class as it is. */
const KEY = "ENVELOPE_ENCRYPTED_TEXT";

// Sequelize exports its types wrapped in a Proxy whose `construct` ignores subclasses
// (`new` would build a plain ABSTRACT): extend the class behind it.
const Abstract = (DataTypes.ABSTRACT as unknown as { prototype: { constructor: new () => object } })
  .prototype.constructor;

/**
 * The attribute type of an encrypted field (a `TEXT` column holding `ev1:` values).
 *
 * It does not encrypt: Sequelize types convert values synchronously, while sealing needs
 * the KMS and the row id, so {@link encryptModel}'s hooks seal and open. The type is the
 * safety net: Sequelize passes every value it sends to this column (INSERT, UPDATE,
 * WHERE, bulk statements) through `_stringify`, which refuses anything that is not a
 * well-formed sealed value, so a write that bypassed the hooks (`hooks: false`, a static
 * `Model.update`) fails instead of storing plaintext.
 *
 * @example
 * User.init({ id: { type: DataTypes.UUID, primaryKey: true }, email: EncryptedText }, { sequelize });
 */
class EncryptedTextType extends Abstract {
  static readonly key = KEY;
  readonly key = KEY;

  toSql(): string {
    return "TEXT";
  }

  /** Called by Sequelize for every value bound or escaped for this column. */
  _stringify(value: unknown): string {
    if (typeof value !== "string" || !isTextForm(value)) throw plaintextWrite();
    decodeEnvelope(fromText(value)); // a FormatError on anything malformed
    return value;
  }
}

/** Sequelize's attribute typings know its own constructors only: typed as one of them. */
export const EncryptedText = EncryptedTextType as unknown as typeof DataTypes.ABSTRACT;

/** True when an attribute's (normalized) type is {@link EncryptedText}. */
export function isEncryptedText(type: unknown): boolean {
  return type instanceof EncryptedTextType;
}

function plaintextWrite(): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    "Refusing to send a value that is not sealed to an encrypted column: write through the model with its hooks on (encryptModel), not hooks: false, a static Model.update or raw SQL; look rows up by an encrypted field with findBy (its blind index), not a where on the column.",
  );
}
