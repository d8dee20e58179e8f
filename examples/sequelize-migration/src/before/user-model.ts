// THE APP BEFORE ENVELOPE: its User model.
import { DataTypes, type ModelStatic, type Sequelize } from "sequelize";
import type { UserModel } from "../users.js";
import { EncryptedString } from "./encrypted-string.js";

export function defineUser(sequelize: Sequelize, tableName: string, legacyKey: Buffer) {
  return sequelize.define(
    "User",
    {
      id: { type: DataTypes.UUID, defaultValue: DataTypes.UUIDV4, primaryKey: true },
      name: { type: DataTypes.STRING(100), allowNull: false },
      email: EncryptedString("email", legacyKey),
      ssn: EncryptedString("ssn", legacyKey),
    },
    { tableName, timestamps: false },
  ) as ModelStatic<UserModel>;
}
