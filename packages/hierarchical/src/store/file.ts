import { randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { corruptStore, storeUnavailable } from "../errors.js";
import {
  copyRecord,
  type IntermediateKeyRecord,
  recordFromJson,
  recordIntact,
  recordToJson,
  type StoredKeyRecord,
} from "../record.js";
import { duplicate } from "./memory.js";
import type { KeyStore } from "./types.js";

const FORMAT = "envelope-hierarchical-keystore";

export interface FileKeyStoreOptions {
  /** The JSON file. Keep it on durable storage and back it up (see README). */
  path: string;
  /**
   * Create the file when it does not exist. Default false: a missing file is an error,
   * because silently starting empty would strand every record sealed under the lost keys.
   * Pass true on the very first deployment only.
   */
  create?: boolean;
}

/**
 * A key store in one JSON file, for a single process (use `postgresKeyStore` when several
 * processes write). Every write goes to a temp file that is fsynced and renamed over the
 * old one, so a crash leaves either the old or the new file, never half of one. A file
 * that fails to parse, or any record whose checksum does not match, stops the open with
 * `ENVELOPE_BAD_KEY`.
 *
 * @example
 * const store = await fileKeyStore({ path: "/var/lib/app/envelope-keys.json", create: true });
 */
export async function fileKeyStore(options: FileKeyStoreOptions): Promise<KeyStore> {
  const path = resolve(options.path);
  const name = `file:${path}`;
  let records = await load(path, name, options.create ?? false);
  // Writes are serialized: each one starts from the state the previous one committed.
  let queue: Promise<unknown> = Promise.resolve();
  const write = <T>(change: (next: Map<string, StoredKeyRecord>) => T): Promise<T> => {
    const run = queue.then(async () => {
      const next = new Map(records);
      const result = change(next);
      if (result === false) return result;
      await persist(path, name, next);
      records = next;
      return result;
    });
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    name,
    async get(id) {
      const found = records.get(id);
      return found && copyRecord(found);
    },
    async put(record: IntermediateKeyRecord) {
      await write((next) => {
        if (next.has(record.id)) throw duplicate(record.id);
        next.set(record.id, copyRecord({ ...record, version: 1 }));
        return true;
      });
    },
    async list() {
      return [...records.values()].map(copyRecord);
    },
    update(id, expectedVersion, record) {
      return write((next) => {
        const found = next.get(id);
        if (!found || found.version !== expectedVersion || record.id !== id) return false;
        next.set(id, copyRecord({ ...record, version: expectedVersion + 1 }));
        return true;
      });
    },
  };
}

async function load(
  path: string,
  name: string,
  create: boolean,
): Promise<Map<string, StoredKeyRecord>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT" && create) {
      const empty = new Map<string, StoredKeyRecord>();
      await persist(path, name, empty);
      return empty;
    }
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
      throw corruptStore(
        name,
        "the file does not exist; pass create: true only on the first deployment, otherwise the keys are lost",
        cause,
      );
    }
    throw storeUnavailable(name, "open", cause);
  }
  let doc: { format?: unknown; formatVersion?: unknown; keys?: unknown };
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw corruptStore(name, "the file is not valid JSON (truncated or edited)", cause);
  }
  if (doc?.format !== FORMAT || doc.formatVersion !== 1 || !Array.isArray(doc.keys)) {
    throw corruptStore(name, `the file is not an ${FORMAT} version 1 document`);
  }
  const records = new Map<string, StoredKeyRecord>();
  doc.keys.forEach((json, index) => {
    const record = recordFromJson(json);
    if (!record || !recordIntact(record)) {
      const id = (json as { id?: unknown })?.id;
      throw corruptStore(
        name,
        `record #${index}${typeof id === "string" ? ` (${id.slice(0, 40)})` : ""} fails its checksum`,
      );
    }
    if (records.has(record.id)) throw corruptStore(name, `record ${record.id} appears twice`);
    records.set(record.id, record);
  });
  return records;
}

async function persist(
  path: string,
  name: string,
  records: Map<string, StoredKeyRecord>,
): Promise<void> {
  const doc = { format: FORMAT, formatVersion: 1, keys: [...records.values()].map(recordToJson) };
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dirname(path));
  } catch (cause) {
    await unlink(temp).catch(() => undefined);
    throw storeUnavailable(name, "write", cause);
  }
}

// Makes the rename itself durable. Some platforms cannot fsync a directory; the rename is
// still atomic there, only its durability on power loss is weaker.
async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // best effort (see above)
  } finally {
    await handle?.close();
  }
}
