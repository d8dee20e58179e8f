import { guardedUpdate } from "./guarded-update.js";
import { type Args, type Delegates, plain, withAnd, withoutFields } from "./prisma-args.js";
import type { RecordCipher } from "./record-cipher.js";

type Row = Record<string, unknown>;

/**
 * `update` that writes encrypted fields: the stored row is read through the base client,
 * `cipher.update` seals the changes, and when that re-seals the whole record (a rotation,
 * or a data key this process did not generate) the write carries the other encrypted
 * columns' read values in its `where` (compare-and-swap): a concurrent change makes it
 * match nothing (P2025), and the update is read and sealed again (at most 3 attempts).
 */
export async function guardedPrismaUpdate(
  cipher: RecordCipher,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
): Promise<unknown> {
  const where = args.where!;
  const data = args.data as Row;
  const clear = withoutFields(data, cipher.schema.encrypted);
  let result: unknown;
  let wrote = false;
  const found = await guardedUpdate(cipher, plain(data), {
    read: async () => (await delegate().findUnique({ where })) ?? undefined,
    async write(set, guards) {
      const guarded = Object.keys(guards).length > 0;
      try {
        result = await query({
          ...args,
          where: guarded ? withAnd(where, guards) : where,
          data: { ...data, ...set },
        });
      } catch (error) {
        if (guarded && (error as { code?: unknown })?.code === "P2025") return undefined;
        throw error;
      }
      wrote = true;
      return {};
    },
  });
  if (wrote) return result;
  // Nothing encrypted to write (only undefined values): the plain changes alone.
  if (found) return query({ ...args, data: clear });
  // No such row: let Prisma raise its own not-found error (P2025), as without the
  // extension, by an update that matches nothing — and never with plaintext in `data`.
  const idField = cipher.schema.idField ?? "id";
  return query({ ...args, where: withAnd(where, { [idField]: { in: [] } }), data: clear });
}
