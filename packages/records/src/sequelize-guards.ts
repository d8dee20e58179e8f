import { isTextForm } from "@envelope/core";
import { col, type Model, type ModelStatic, Op, where } from "sequelize";

type Row = Record<string, unknown>;

/**
 * The compare-and-swap conditions of a guarded write. A guard holding a legacy value (the
 * transitional read re-seals such a row whole) is compared as a plain column, outside the
 * EncryptedText type, which refuses to send anything but a sealed value.
 */
export function guardsOf(model: ModelStatic<Model>, guards: Row): unknown[] {
  const attributes = model.getAttributes() as Record<string, { field?: string }>;
  return Object.entries(guards).map(([k, v]) =>
    v === null || (typeof v === "string" && isTextForm(v))
      ? { [k]: v }
      : where(col(attributes[k]?.field ?? k), Op.eq, v as string),
  );
}
