import { FormatError } from "../errors.js";
import { type EnvelopeInfo, inspectEnvelope } from "../format/parse.js";
import { parseStreamHeader } from "./header.js";

/** Header facts of an Envelope stream. No secrets: ids, key references, sizes. */
export interface StreamInfo {
  form: "stream";
  version: number;
  suite: number;
  chunkSize: number;
  headerBytes: number;
  /** The key envelope sealing the stream key: its providers and key references. */
  key: EnvelopeInfo;
}

/**
 * Describes a stream from its first bytes (the header; 15 + key-envelope length bytes).
 *
 * @example
 * const info = inspectStream(firstBytesOfFile); // info.key.entries → who can open it
 */
export function inspectStream(firstBytes: Uint8Array): StreamInfo {
  const header = parseStreamHeader(firstBytes);
  if (!header) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      "Stream is truncated: it ends inside the header.",
      {
        details: { field: "header" },
      },
    );
  }
  return {
    form: "stream",
    version: header.version,
    suite: header.suite,
    chunkSize: header.chunkSize,
    headerBytes: header.length,
    key: inspectEnvelope(Buffer.from(header.keyEnvelope)),
  };
}
