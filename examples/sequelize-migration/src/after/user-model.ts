// THE APP AFTER THE TAKEOVER: the same User model, its encrypted attributes now sealed by
// @envelope/records (one data key per row, each value bound to { table, column, id })
// instead of EncryptedString. While the table may still hold legacy values, the cipher
// reads through the transitional read; `envelope migrate --records` writes exactly what
// this cipher reads.
import type { Envelope } from "@envelope/core";
import { createRecordCipher, type TransitionalRead } from "@envelope/records";
import { EncryptedText, encryptModel } from "@envelope/records/sequelize";
import { DataTypes, type ModelStatic, type Sequelize } from "sequelize";
import type { UserModel } from "../users.js";

export function defineUser(
  sequelize: Sequelize,
  tableName: string,
  keys: { envelope: Envelope; transitional?: TransitionalRead },
) {
  const Users = sequelize.define(
    "User",
    {
      id: { type: DataTypes.UUID, defaultValue: DataTypes.UUIDV4, primaryKey: true },
      name: { type: DataTypes.STRING(100), allowNull: false },
      email: EncryptedText,
      ssn: EncryptedText,
    },
    { tableName, timestamps: false },
  ) as ModelStatic<UserModel>;
  const cipher = createRecordCipher(
    keys.envelope,
    { table: tableName, encrypted: ["email", "ssn"] },
    keys.transitional ? { transitional: keys.transitional } : {},
  );
  encryptModel(Users, cipher);
  return Users;
}
