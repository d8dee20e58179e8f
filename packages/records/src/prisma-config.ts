import { ConfigError } from "@envelope/core";
import { didYouMean, shown } from "./names.js";
import type { DataModel } from "./prisma-relations.js";

type Row = Record<string, unknown>;

const OPTION_KEYS = ["envelope", "models", "blindIndex", "concurrency"] as const;
const MODEL_KEYS = [
  "encrypted",
  "blindIndexes",
  "table",
  "idField",
  "pad",
  "allowEnvelopePlaintext",
] as const;

const bad = (problem: string, field: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", `prismaEncryption: ${problem}`, {
    details: { field },
  });

/**
 * Refuses a misspelt key in prismaEncryption's options or a model's config: ignored, it
 * would leave a field unencrypted or unsearchable without a word.
 */
export function checkPrismaOptions(options: Row, models: Row): void {
  unknownKeys(options, OPTION_KEYS, "");
  for (const [model, spec] of Object.entries(models)) {
    if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
      throw bad(
        `models.${shown(model)} must be an object such as { encrypted: ["email"] }.`,
        `models.${shown(model)}`,
      );
    }
    unknownKeys(spec as Row, MODEL_KEYS, `models.${shown(model)}.`);
  }
}

function unknownKeys(given: Row, known: readonly string[], at: string): void {
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || known.includes(key)) continue;
    throw bad(
      `unknown key "${at}${shown(key)}".${didYouMean(key, known)} Known keys: ${known.join(", ")}.`,
      `${at}${shown(key)}`,
    );
  }
}

/**
 * Checks the configured models against the client's data model when the extension is
 * applied: a model name Prisma does not know (its writes would pass through unsealed), an
 * encrypted or blind index field the model does not have (the real field would stay
 * plaintext), or one that is not a String field (the sealed text cannot be stored there).
 */
export function checkAgainstDataModel(
  dataModel: DataModel,
  models: Record<
    string,
    { encrypted: readonly string[]; blindIndexes?: Row; idField?: string } | undefined
  >,
): void {
  const names = Object.keys(dataModel.models);
  for (const [model, spec] of Object.entries(models)) {
    const known = dataModel.models[model];
    if (!known) {
      throw bad(
        `models.${shown(model)}: the client has no model "${shown(model)}" (names as in schema.prisma, e.g. "User").${didYouMean(model, names)} Its writes would be stored unencrypted.`,
        `models.${shown(model)}`,
      );
    }
    const fields = new Map(known.fields.map((f) => [f.name, f]));
    const need = (field: string, role: string, text: boolean) => {
      const found = fields.get(field);
      const at = `models.${shown(model)}.${role}`;
      if (!found) {
        throw bad(
          `${at}: model ${shown(model)} has no field "${shown(field)}".${didYouMean(field, [...fields.keys()])}`,
          at,
        );
      }
      if (text && (found.kind !== "scalar" || found.type !== "String")) {
        throw bad(
          `${at}: field "${shown(field)}" of ${shown(model)} is ${found.kind === "scalar" ? `of type ${found.type}` : `a ${found.kind === "object" ? "relation" : found.kind} field`}; sealed values and blind indexes are text: declare it String?.`,
          at,
        );
      }
    };
    if (!Array.isArray(spec?.encrypted)) continue; // createRecordCipher has refused it already
    for (const field of spec.encrypted) need(field, "encrypted", true);
    for (const [field, index] of Object.entries(spec.blindIndexes ?? {})) {
      const column = (index as { column?: unknown } | undefined)?.column;
      need(typeof column === "string" ? column : `${field}_idx`, `blindIndexes.${field}`, true);
    }
    need(spec.idField ?? "id", "idField", false);
  }
}
