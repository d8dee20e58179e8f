/**
 * Builds envelope bytes field by field, with every length overridable, so tests can
 * declare lengths and counts the data does not back up. Nothing here validates.
 */
export interface CraftEntry {
  providerId?: string;
  providerIdLength?: number;
  keyRef?: string;
  keyRefLength?: number;
  wrapped?: Uint8Array;
  wrappedLength?: number;
}

export interface CraftOptions {
  version?: number;
  suite?: number;
  flags?: number;
  messageId?: Uint8Array;
  commitment?: Uint8Array;
  entryCount?: number;
  entries?: CraftEntry[];
  context?: Uint8Array;
  contextLength?: number;
  ciphertextLength?: number;
  body?: Uint8Array;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

export function craft(options: CraftOptions = {}): Buffer {
  const entries = options.entries ?? [{}];
  const parts: Buffer[] = [
    Buffer.from([options.version ?? 1, options.suite ?? 1, options.flags ?? 0]),
    Buffer.from(options.messageId ?? new Uint8Array(32).fill(0x11)),
    Buffer.from(options.commitment ?? new Uint8Array(32).fill(0x22)),
    Buffer.from([options.entryCount ?? entries.length]),
  ];
  for (const e of entries) {
    const id = Buffer.from(e.providerId ?? "local-aes", "latin1");
    const ref = Buffer.from(e.keyRef ?? "0123456789abcdef", "utf8");
    const wrapped = Buffer.from(e.wrapped ?? new Uint8Array(40).fill(0x33));
    parts.push(Buffer.from([e.providerIdLength ?? id.length]), id);
    parts.push(u16(e.keyRefLength ?? ref.length), ref);
    parts.push(u16(e.wrappedLength ?? wrapped.length), wrapped);
  }
  if (options.context || options.contextLength !== undefined) {
    const context = Buffer.from(options.context ?? new Uint8Array(0));
    parts.push(u16(options.contextLength ?? context.length), context);
  }
  const body = Buffer.from(options.body ?? new Uint8Array(16).fill(0x44));
  parts.push(u32(options.ciphertextLength ?? body.length - 16), body);
  return Buffer.concat(parts);
}

/** A canonical context encoding written by hand (pairs in the order given). */
export function rawContext(
  pairs: [Uint8Array | string, Uint8Array | string][],
  count = pairs.length,
) {
  const out: Buffer[] = [u16(count)];
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k);
    const vb = Buffer.from(v);
    out.push(u16(kb.length), kb, u16(vb.length), vb);
  }
  return Buffer.concat(out);
}
