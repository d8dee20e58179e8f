import type { RecordCipher } from "./record-cipher.js";

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;

interface Waiter {
  row: Row;
  resolve(opened: Row): void;
  reject(error: unknown): void;
}

/**
 * Opens rows handed over one at a time (TypeORM's `afterLoad`) in batches through
 * `cipher.openMany`. TypeORM calls `afterLoad` for every entity of a find in one synchronous
 * loop, then awaits all the promises: the rows queued in that loop form one batch, opened
 * together a microtask later (one unwrap per record, the cipher's `concurrency` at a time).
 * Rows that arrive while a batch runs wait and form the next batch, so that bound holds for
 * every find of the process together. Each row's promise settles with its own result: rows
 * of two finds that share a batch never fail each other.
 */
export function loadBatcher(cipher: AnyCipher): (row: Row) => Promise<Row> {
  let pending: Waiter[] = [];
  let busy = false; // a drain is scheduled or running

  const drain = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        const results = await cipher.openMany<Row>(batch.map((w) => w.row));
        for (const [i, r] of results.entries()) {
          if (r.ok) batch[i]!.resolve(r.value);
          else batch[i]!.reject(r.error);
        }
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    busy = false;
  };

  return (row) =>
    new Promise<Row>((resolve, reject) => {
      pending.push({ row, resolve, reject });
      if (busy) return;
      busy = true;
      queueMicrotask(() => void drain());
    });
}
