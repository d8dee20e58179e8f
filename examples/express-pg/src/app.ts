import { randomUUID } from "node:crypto";
import type { Envelope, ReadinessReport } from "@envelope/core";
import type { BlindIndexer } from "@envelope/records";
import express, { type Express } from "express";
import type { Pool } from "pg";
import { ApiError, errorHandler, notFound } from "./http/errors.js";
import type { EnvelopeRef } from "./keys/live-envelope.js";
import { type Logger, silentLogger } from "./log.js";
import { UserStore } from "./users/store.js";
import { parseEmailQuery, parseId, parsePhonePatch, parseSignup } from "./users/validate.js";

export interface AppOptions {
  pool: Pool;
  /** The envelope, or a holder whose envelope may be replaced at run time (key rotation). */
  envelope: EnvelopeRef | Envelope;
  /** Blind indexer for the email lookup: `createBlindIndexer({ keys })`. */
  blindIndex: BlindIndexer;
  /** Users table (created beforehand with `ensureSchema`). Default `example_users`. */
  table?: string;
  /** Default: logs nothing. `jsonLogger` writes ids and codes as JSON lines. */
  log?: Logger;
}

/** How long one readiness report answers `/ready`. */
const READY_REPORT_MS = 5000;

/**
 * The users API as an Express app, not yet listening: the server and the tests both
 * start it from here.
 *
 * @example
 * const app = createApp({ pool, envelope, blindIndex: createBlindIndexer({ keys }) });
 * app.listen(3000);
 */
export function createApp(options: AppOptions): Express {
  const log = options.log ?? silentLogger;
  const ref: EnvelopeRef =
    "current" in options.envelope ? options.envelope : constant(options.envelope);
  const users = new UserStore({
    pool: options.pool,
    envelope: ref,
    blindIndex: options.blindIndex,
    table: options.table ?? "example_users",
  });

  const app = express();
  app.disable("x-powered-by");
  app.use((req, res, next) => {
    const started = performance.now();
    res.locals.requestId = randomUUID();
    res.setHeader("x-request-id", res.locals.requestId);
    res.on("finish", () => {
      log({
        event: "request",
        requestId: res.locals.requestId,
        method: req.method,
        route: req.route?.path ?? "(none)",
        status: res.statusCode,
        userId: res.locals.userId,
        ms: Math.round(performance.now() - started),
      });
    });
    next();
  });
  app.use(express.json({ limit: "16kb" }));

  app.get("/health", async (_req, res) => {
    await options.pool.query("SELECT 1");
    // Key references are ids (fingerprints, ARNs), not secrets: handy to watch a rotation.
    res.json({ status: "ok", keys: ref.current().describe() });
  });

  // Readiness (a Kubernetes readinessProbe, a load balancer): every configured key wraps
  // and unwraps a canary (envelope.check()). Probes come every few seconds and each check
  // is two KMS calls per key, so a check still running answers every probe that comes
  // meanwhile (a slow KMS is when they would pile up), and its report then serves for
  // READY_REPORT_MS; a rotation's new envelope gets a check of its own at once.
  let ready:
    | { envelope: Envelope; doneAt: number | undefined; report: Promise<ReadinessReport> }
    | undefined;
  app.get("/ready", async (_req, res) => {
    const envelope = ref.current();
    const stale = ready?.doneAt !== undefined && performance.now() - ready.doneAt > READY_REPORT_MS;
    if (!ready || ready.envelope !== envelope || stale) {
      const entry = {
        envelope,
        doneAt: undefined as number | undefined,
        report: envelope.check({ timeoutMs: 3000 }),
      };
      ready = entry;
      // A check that cannot run (the client is closing: ENVELOPE_CLOSED) is not kept.
      entry.report.then(
        () => {
          entry.doneAt = performance.now();
        },
        () => {
          if (ready === entry) ready = undefined;
        },
      );
    }
    const checking = ready;
    try {
      // Ids, statuses, error codes and messages only: never key material.
      const report = await checking.report;
      res.status(report.ok ? 200 : 503).json(report);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      res
        .status(503)
        .json({ ok: false, error: { code: typeof code === "string" ? code : "UNKNOWN" } });
    }
  });

  app.post("/users", async (req, res) => {
    const user = await users.create(parseSignup(req.body));
    res.locals.userId = user.id;
    res.status(201).location(`/users/${user.id}`).json(user);
  });

  app.get("/users", async (req, res) => {
    const found = await users.findByEmail(parseEmailQuery(req.query.email));
    res.json({ users: found });
  });

  app.get("/users/:id", async (req, res) => {
    const id = parseId(req.params.id);
    res.locals.userId = id;
    const user = await users.get(id);
    if (!user) throw new ApiError(404, "USER_NOT_FOUND", "No user with this id.");
    res.json(user);
  });

  app.patch("/users/:id", async (req, res) => {
    const id = parseId(req.params.id);
    res.locals.userId = id;
    const user = await users.updatePhone(id, parsePhonePatch(req.body).phone);
    if (!user) throw new ApiError(404, "USER_NOT_FOUND", "No user with this id.");
    res.json(user);
  });

  app.use(notFound);
  app.use(
    errorHandler(({ status, code, requestId }) =>
      log({ event: "request failed", status, code, requestId }),
    ),
  );
  return app;
}

function constant(envelope: Envelope): EnvelopeRef {
  return { current: () => envelope };
}
