// The CommonJS builds (`require`), which older apps and some bundlers load.
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { check } from "../assert.mjs";

const require = createRequire(import.meta.url);

async function commonJs() {
  const core = require("@envelope/core");
  const rsa = require("@envelope/local-rsa");
  const records = require("@envelope/records");
  check(typeof rsa.localRsaProvider === "function", "local-rsa CJS build loads");
  check(typeof records.createRecordCipher === "function", "records CJS build loads");
  const envelope = new core.Envelope({ encrypt: core.localAesProvider({ keys: randomBytes(32) }) });
  const context = { table: "t", column: "c", id: "1" };
  const sealed = await envelope.encrypt("cjs", { context });
  check((await envelope.decrypt(sealed, { context, as: "text" })) === "cjs", "CJS round trip");
}

export const cjsChecks = [["CommonJS builds (require)", commonJs]];
