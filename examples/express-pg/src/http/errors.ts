import { EnvelopeError } from "@envelope/core";
import type { ErrorRequestHandler, RequestHandler } from "express";

/** An error the API answers with as `{ error: { code, message, fields? } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: string[],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** What the error handler reports for each failed request: ids and codes only. */
export type ErrorLog = (entry: { status: number; code: string; requestId: string }) => void;

/** 404 for every route the app does not have. */
export const notFound: RequestHandler = (_req, _res, next) => {
  next(new ApiError(404, "NOT_FOUND", "No such endpoint."));
};

/**
 * Turns every error into a JSON answer. Messages are fixed strings chosen here, never
 * the thrown error's message: a driver or parser message can quote the request body,
 * which is PII.
 */
export function errorHandler(log: ErrorLog): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const answer = toAnswer(error);
    log({
      status: answer.status,
      code: answer.code,
      requestId: String(res.locals.requestId ?? ""),
    });
    if (res.headersSent) return req.socket.destroy();
    res.status(answer.status).json({
      error: {
        code: answer.code,
        message: answer.message,
        ...(answer.fields ? { fields: answer.fields } : {}),
      },
    });
  };
}

function toAnswer(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as { type?: string; status?: number; code?: string };
  // body-parser errors: their messages can contain a slice of the body, so they are replaced.
  if (e?.type === "entity.parse.failed") {
    return new ApiError(400, "INVALID_JSON", "The request body is not valid JSON.");
  }
  if (e?.type === "entity.too.large") {
    return new ApiError(413, "BODY_TOO_LARGE", "The request body is too large.");
  }
  if (typeof e?.type === "string" && e.status && e.status >= 400 && e.status < 500) {
    return new ApiError(e.status, "BAD_REQUEST", "The request could not be read.");
  }
  if (EnvelopeError.isInstance(error)) {
    const unavailable = /KMS_(THROTTLED|UNAVAILABLE|TIMEOUT)/.test(error.code);
    return new ApiError(
      unavailable ? 503 : 500,
      error.code,
      unavailable
        ? "The key service is unavailable; retry shortly."
        : "The record could not be encrypted or decrypted.",
    );
  }
  if (typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) {
    return new ApiError(503, "DATABASE_ERROR", "The database request failed; retry shortly.");
  }
  return new ApiError(500, "INTERNAL", "Internal error.");
}
