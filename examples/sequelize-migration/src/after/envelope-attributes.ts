// Envelope for a Sequelize model through plain hooks: each encrypted attribute is sealed
// with envelope.encrypt, bound to { table, column, id } — exactly what `envelope migrate`
// writes, so app writes and migrated values are the same kind of value.
//
// (@envelope/records is getting a full Sequelize integration; until then these ~100 lines
// are the "after" model. Reads go through records' transitionalRead while the table still
// holds legacy values, and through envelope.decrypt once it does not.)
import { ConfigError, type Envelope } from "@envelope/core";
import type { TransitionalRead } from "@envelope/records";
import { Model, type ModelStatic } from "sequelize";

export interface EncryptedAttributes {
  envelope: Envelope;
  table: string;
  attributes: readonly string[];
  /** Set while the table may still hold legacy values; remove it with the legacy key. */
  transitional?: TransitionalRead;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function encryptAttributes(Users: ModelStatic<Model>, spec: EncryptedAttributes): void {
  const { envelope, table, attributes, transitional } = spec;
  const context = (column: string, id: unknown) => ({ table, column, id: String(id) });
  // Plaintext of the values sealed by beforeSave, put back into the instance afterSave.
  const pending = new WeakMap<Model, Record<string, unknown>>();

  const open = async (column: string, id: unknown, stored: string): Promise<string> => {
    if (!transitional)
      return envelope.decrypt(stored, { context: context(column, id), as: "text" });
    const { plaintext } = await transitional.open(envelope, stored, context(column, id));
    try {
      return strictUtf8.decode(plaintext);
    } finally {
      plaintext.fill(0);
    }
  };

  Users.addHook("beforeSave", async (user: Model) => {
    const plain: Record<string, unknown> = {};
    for (const column of attributes) {
      const value = user.getDataValue(column);
      if (!user.changed(column as never) || value === null || value === undefined) continue;
      if (typeof value !== "string") {
        throw new ConfigError("ENVELOPE_BAD_INPUT", `${table}.${column} takes a string.`, {
          details: { table, column },
        });
      }
      const id = user.getDataValue("id");
      plain[column] = value;
      user.setDataValue(
        column,
        await envelope.encrypt(value, { context: context(column, id), output: "text" }),
      );
    }
    pending.set(user, plain);
  });

  Users.addHook("afterSave", (user: Model) => {
    for (const [column, value] of Object.entries(pending.get(user) ?? {})) {
      user.setDataValue(column, value);
      user.changed(column as never, false);
    }
    pending.delete(user);
  });

  // findAll / findOne / findByPk, also with raw: true (then the rows are plain objects).
  Users.addHook("afterFind", async (result: unknown) => {
    const rows = (Array.isArray(result) ? result : result ? [result] : []) as (
      | Model
      | Record<string, unknown>
    )[];
    await Promise.all(
      rows.map(async (row) => {
        const instance = row instanceof Model ? row : undefined;
        const get = (k: string) =>
          instance ? instance.getDataValue(k) : (row as Record<string, unknown>)[k];
        for (const column of attributes) {
          const stored = get(column);
          if (stored === null || stored === undefined) continue;
          const value = await open(column, get("id"), stored as string);
          if (!instance) (row as Record<string, unknown>)[column] = value;
          else {
            instance.setDataValue(column, value);
            instance.changed(column as never, false);
          }
        }
      }),
    );
  });

  // Each value is bound to its row id: a bulk write cannot seal per row here.
  const refuseBulk = (what: string) => () => {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${what} on ${table} would write encrypted attributes unsealed: load the instances and save them one by one.`,
      { details: { table } },
    );
  };
  Users.addHook("beforeBulkCreate", refuseBulk("bulkCreate"));
  Users.addHook("beforeBulkUpdate", (options) => {
    // Sequelize passes the values being written as options.attributes.
    const values = (options as { attributes?: Record<string, unknown> }).attributes ?? {};
    if (attributes.some((a) => a in values)) refuseBulk("Model.update()")();
  });
}
