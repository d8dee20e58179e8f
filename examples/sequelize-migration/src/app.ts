// Starts the app for a configuration: the same store code over the model that the
// configuration selects (see settings.ts stageOf).
import { legacyDecoder, loadLegacyKey } from "@envelope/batch-rewrap";
import { envelopeFromEnv } from "@envelope/core";
import { type LegacyReadEvent, type TransitionalRead, transitionalRead } from "@envelope/records";
import { Sequelize } from "sequelize";
import { defineUser as defineEnvelopeUser } from "./after/user-model.js";
import { defineUser as defineLegacyUser } from "./before/user-model.js";
import { type Settings, stageOf } from "./settings.js";
import { type UserStore, userStore } from "./users.js";

export interface App {
  stage: "before" | "transitional" | "after";
  users: UserStore;
  /** Legacy values read so far by format (transitional stage only). */
  legacyReads(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

export async function startApp(
  settings: Settings,
  onLegacyRead: (e: LegacyReadEvent) => void = (e) =>
    console.log(JSON.stringify({ event: "legacy read", ...e })),
): Promise<App> {
  const { env, table } = settings;
  const stage = stageOf(env);
  const sequelize = new Sequelize(settings.databaseUrl, { logging: false, pool: { max: 4 } });
  let transitional: TransitionalRead | undefined;
  let Users: ReturnType<typeof defineLegacyUser>;
  if (stage === "before") {
    Users = defineLegacyUser(sequelize, table, loadLegacyKey({ env: "LEGACY_ENC_KEY" }, env));
  } else {
    const envelope = await envelopeFromEnv(env);
    if (stage === "transitional") {
      transitional = transitionalRead({
        decoders: [
          legacyDecoder({ format: "aes-256-gcm-json", key: { env: "LEGACY_ENC_KEY" }, env }),
        ],
        onLegacyRead,
      });
    }
    Users = defineEnvelopeUser(sequelize, table, {
      envelope,
      ...(transitional ? { transitional } : {}),
    });
  }
  await Users.sync(); // creates the table on first start (id, name, email, ssn)
  return {
    stage,
    users: userStore(Users),
    legacyReads: () => transitional?.counts() ?? {},
    close: () => sequelize.close(),
  };
}
