import { ApiError } from "../http/errors.js";

/** A signup as the API accepts it, already normalized for storage. */
export interface SignupInput {
  email: string;
  phone: string | null;
  ssn: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks a signup body. Error messages name the field and the rule, never the value.
 *
 * @example
 * parseSignup({ email: "ann@example.com", phone: "+1 555 010 0199", ssn: "123-45-6789" });
 */
export function parseSignup(body: unknown): SignupInput {
  const fields = object(body, ["email", "phone", "ssn"]);
  const bad: string[] = [];
  const email = parseEmail(fields.email);
  if (email === undefined) bad.push("email");
  const phone =
    fields.phone === undefined || fields.phone === null ? null : parsePhone(fields.phone);
  if (phone === undefined) bad.push("phone");
  const ssn = parseSsn(fields.ssn);
  if (ssn === undefined) bad.push("ssn");
  if (bad.length > 0) throw invalid(bad);
  return { email: email!, phone: phone!, ssn: ssn! };
}

/** Checks a PATCH body: only `phone` may change (a string, or null to clear it). */
export function parsePhonePatch(body: unknown): { phone: string | null } {
  const fields = object(body, ["phone"]);
  if (!("phone" in fields))
    throw invalid(["phone"], 'Send { "phone": "+1 555 010 0199" } or { "phone": null }.');
  if (fields.phone === null) return { phone: null };
  const phone = parsePhone(fields.phone);
  if (phone === undefined) throw invalid(["phone"]);
  return { phone };
}

/** The `email` query parameter of a lookup. */
export function parseEmailQuery(value: unknown): string {
  const email = parseEmail(value);
  if (email === undefined)
    throw invalid(["email"], "Give ?email=<address> (a valid email address).");
  return email;
}

/** Ids are UUIDs; anything else is a 400 before the database is asked. */
export function parseId(value: unknown): string {
  if (typeof value !== "string" || !UUID.test(value)) {
    throw new ApiError(400, "INVALID_ID", "The user id must be a UUID.", ["id"]);
  }
  return value.toLowerCase();
}

/** Trimmed, case kept (lookups are case-insensitive through the blind index's normalizer). */
function parseEmail(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const email = value.normalize("NFC").trim();
  return email.length <= 254 && EMAIL.test(email) ? email : undefined;
}

/** Stored as `+` and digits (E.164 style): spaces, dots, dashes and parentheses are dropped. */
function parsePhone(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const phone = value.trim().replace(/[\s.()-]/g, "");
  return /^\+?[0-9]{7,15}$/.test(phone) ? phone : undefined;
}

/** Stored as ddd-dd-dddd. */
function parseSsn(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(\d{3})-?(\d{2})-?(\d{4})$/.exec(value.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

function object(body: unknown, allowed: string[]): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(
      400,
      "INVALID_INPUT",
      "Send a JSON object (Content-Type: application/json).",
    );
  }
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0) {
    // The unknown names are not echoed: a client may have put data in them.
    throw new ApiError(
      400,
      "UNKNOWN_FIELD",
      `Only these fields are accepted: ${allowed.join(", ")}.`,
    );
  }
  return body as Record<string, unknown>;
}

function invalid(fields: string[], message?: string): ApiError {
  return new ApiError(
    400,
    "INVALID_INPUT",
    message ??
      `Invalid ${fields.join(", ")}: email must be an address, phone 7-15 digits (optional +, spaces, dashes), ssn ddd-dd-dddd.`,
    fields,
  );
}
