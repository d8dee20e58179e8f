import {
  ConfigError,
  DecryptionError,
  type EncryptionContext,
  EnvelopeError,
  type ErrorCode,
  type ErrorDetails,
  FormatError,
  type KeySpec,
  ProviderError,
} from "@envelope/core";
import type { Value } from "../engine/transform.js";

/** What a rewrap thread is started with (`workerData`): plain data only. */
export interface ThreadSetup {
  to: KeySpec[];
  decrypt: KeySpec[];
  env: Record<string, string | undefined>;
  verifyAll: boolean;
  verifyBody: boolean;
}

/**
 * Values sent to a thread in one message. Binary values are views into one buffer that is
 * transferred, not copied (a view into a driver's larger buffer would be cloned whole).
 */
export interface RewrapRequest {
  id: number;
  values: (string | Uint8Array)[];
  contexts: EncryptionContext[];
}

/** A thread's answer to one request: per value a new value or an error, and its key calls. */
export interface RewrapReply {
  id: number;
  values: (string | Uint8Array | null)[];
  errors: (WireError | null)[];
  calls: number;
}

/** A thread's first message: ready, or why it could not build its keys. */
export type ThreadStatus = { ready: true } | { fatal: WireError };

/** An error as it crosses the thread boundary: class name, code, message, details; never a cause. */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  details?: ErrorDetails;
}

const CLASSES: Record<string, typeof EnvelopeError> = {
  EnvelopeError,
  FormatError,
  DecryptionError,
  ConfigError,
  ProviderError,
};

/** The safe fields of an error. The cause stays in the thread (it may hold vendor objects). */
export function toWire(error: unknown): WireError {
  if (EnvelopeError.isInstance(error))
    return { name: error.name, code: error.code, message: error.message, details: error.details };
  const e = error as Error | undefined;
  return { name: String(e?.name ?? "Error"), message: String(e?.message ?? e).slice(0, 300) };
}

/** The same error class and code on this side of the boundary. */
export function fromWire(wire: WireError): Error {
  if (wire.code !== undefined) {
    const Class = CLASSES[wire.name] ?? EnvelopeError;
    return new Class(wire.code as ErrorCode, wire.message, { details: wire.details ?? {} });
  }
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}

/**
 * Values ready to post: strings as they are, byte values copied into one fresh buffer
 * (returned to be transferred) and sent as views into it.
 */
export function pack(values: readonly (Value | null)[]): {
  values: (string | Uint8Array | null)[];
  transfer: ArrayBuffer[];
} {
  let size = 0;
  for (const v of values) if (v !== null && typeof v !== "string") size += v.length;
  if (size === 0) return { values: values as (string | null)[], transfer: [] };
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  let at = 0;
  const out = values.map((v) => {
    if (v === null || typeof v === "string") return v;
    bytes.set(v, at);
    const view = new Uint8Array(buffer, at, v.length);
    at += v.length;
    return view;
  });
  return { values: out, transfer: [buffer] };
}

/** A posted value as the engine works with it (bytes as a Buffer over the received memory). */
export function unpack(value: string | Uint8Array): Value {
  return typeof value === "string"
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
