import { Model } from "sequelize";
import type { RecordCipher } from "./record-cipher.js";
import { valuesOrThrow } from "./rows.js";
import { addIdAttribute } from "./sequelize-checks.js";

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;

/** The parts of a Sequelize instance the hooks touch (public API plus the two value maps). */
export interface Instance {
  dataValues: Row;
  _previousDataValues: Row;
  changed(key: string, dirty: boolean): void;
}

/** Model class → its cipher: opens encrypted models reached through `include`. */
export const cipherOf = new WeakMap<object, AnyCipher>();

export function bagOf(item: Instance | Row): Row {
  return item instanceof Model ? (item as unknown as Instance).dataValues : (item as Row);
}

/**
 * Opens found rows in place: instances (and the instances of encrypted models reached
 * through `include`) and the plain objects of `raw: true`. The rows of each model go through
 * its cipher's `openMany` (one unwrap per record, the cipher's `concurrency` at a time),
 * one model after the other so that bound holds for the whole find. All or nothing: when a
 * row does not open, the find rejects with its typed error and no row is changed.
 */
export async function openFound(items: readonly (Instance | Row)[], own: AnyCipher): Promise<void> {
  type Task = { cipher: AnyCipher; bag: Row; previous?: Row };
  const tasks: Task[] = [];
  const seen = new Set<object>();
  const visit = (item: unknown, rawCipher?: AnyCipher) => {
    if (typeof item !== "object" || item === null || seen.has(item)) return;
    seen.add(item);
    if (Array.isArray(item)) {
      for (const x of item) visit(x);
      return;
    }
    if (item instanceof Model) {
      const instance = item as unknown as Instance;
      const cipher = cipherOf.get(item.constructor);
      if (cipher && holdsEncrypted(cipher, instance.dataValues))
        tasks.push({ cipher, bag: instance.dataValues, previous: instance._previousDataValues });
      for (const v of Object.values(instance.dataValues)) if (typeof v === "object") visit(v);
      return;
    }
    // raw: true: a plain object of the model's own attributes.
    if (rawCipher && holdsEncrypted(rawCipher, item as Row)) {
      tasks.push({ cipher: rawCipher, bag: item as Row });
    }
  };
  for (const item of items) visit(item, own);
  const byCipher = new Map<AnyCipher, Task[]>();
  for (const task of tasks) {
    const group = byCipher.get(task.cipher);
    if (group) group.push(task);
    else byCipher.set(task.cipher, [task]);
  }
  const writes: (() => void)[] = [];
  for (const [cipher, group] of byCipher) {
    const opened = valuesOrThrow(await cipher.openMany<Row>(group.map((t) => t.bag)));
    for (const [i, { bag, previous }] of group.entries()) {
      writes.push(() => {
        for (const f of cipher.schema.encrypted) {
          if (!(f in bag)) continue;
          bag[f] = opened[i]![f];
          if (previous) previous[f] = opened[i]![f];
        }
      });
    }
  }
  for (const write of writes) write();
}

/** A selection of plain attributes only (`attributes: ["name"]`) has nothing to open, nor an id. */
function holdsEncrypted(cipher: AnyCipher, bag: Row): boolean {
  return cipher.schema.encrypted.some((f) => f in bag);
}

interface Include {
  model?: { getAttributes(): Record<string, unknown> };
  as?: string;
  attributes?: unknown;
  include?: Include[];
  separate?: boolean;
}

/** The ids added to `include` selections, per include object (removed after the find). */
const addedTo = new WeakSet<object>();

/**
 * `include: [{ model: Note, attributes: ["body"] }]`: Sequelize selects the included
 * model's primary key but builds its instances from the caller's list, without it. Called
 * before Sequelize expands the includes' attributes (`exclude` forms expanded here as it
 * does), it adds the id of every encrypted included model whose selection needs it.
 */
export function addIncludedIds(includes: unknown, raw: boolean): void {
  if (raw || !Array.isArray(includes)) return;
  for (const include of includes as Include[]) {
    const cipher = include?.model && cipherOf.get(include.model);
    if (cipher && include.attributes && !include.separate) {
      const a = include.attributes as { exclude?: string[]; include?: unknown[] };
      if (!Array.isArray(a)) {
        let names: unknown[] = Object.keys(include.model!.getAttributes());
        if (a.exclude) names = names.filter((n) => !a.exclude!.includes(n as string));
        if (a.include) names = names.concat(a.include);
        include.attributes = names;
      }
      if (addIdAttribute(cipher, include.attributes)) addedTo.add(include);
    }
    addIncludedIds(include?.include, raw);
  }
}

/** Removes from included instances the ids {@link addIncludedIds} added. */
export function removeIncludedIds(items: readonly unknown[], includes: unknown): void {
  if (!Array.isArray(includes)) return;
  for (const include of includes as Include[]) {
    if (!include?.as || include.separate) continue;
    const cipher = include.model && cipherOf.get(include.model);
    const nested = items
      .filter((i): i is Model => i instanceof Model)
      .flatMap((i) => [(i as unknown as Instance).dataValues[include.as!]].flat())
      .filter((x): x is Model => x instanceof Model);
    if (cipher && addedTo.has(include)) {
      const idField = cipher.schema.idField ?? "id";
      for (const n of nested) {
        delete (n as unknown as Instance).dataValues[idField];
        delete (n as unknown as Instance)._previousDataValues[idField];
      }
    }
    removeIncludedIds(nested, include.include);
  }
}
