// THE APP AFTER THE TAKEOVER: the same User model, its encrypted attributes now plain TEXT
// columns sealed by Envelope (hooks in envelope-attributes.ts) instead of EncryptedString.
import type { Envelope } from "@envelope/core";
import type { TransitionalRead } from "@envelope/records";
import { DataTypes, type ModelStatic, type Sequelize } from "sequelize";
import type { UserModel } from "../users.js";
import { encryptAttributes } from "./envelope-attributes.js";

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
      email: { type: DataTypes.TEXT },
      ssn: { type: DataTypes.TEXT },
    },
    { tableName, timestamps: false },
  ) as ModelStatic<UserModel>;
  encryptAttributes(Users, { ...keys, table: tableName, attributes: ["email", "ssn"] });
  return Users;
}
