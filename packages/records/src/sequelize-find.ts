import { Model } from "sequelize";
import type { RecordCipher } from "./record-cipher.js";
import { valuesOrThrow } from "./rows.js";

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
      if (cipher)
        tasks.push({ cipher, bag: instance.dataValues, previous: instance._previousDataValues });
      for (const v of Object.values(instance.dataValues)) if (typeof v === "object") visit(v);
      return;
    }
    // raw: true: a plain object of the model's own attributes.
    if (rawCipher) tasks.push({ cipher: rawCipher, bag: item as Row });
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
