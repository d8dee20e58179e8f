// Signed mode (suite 0x02, Ed25519): a pinned reader opens the writer's values and refuses
// unsigned ones and those of another signer.
import { randomBytes } from "node:crypto";
import {
  Envelope,
  generateSigningKeyPair,
  inspectEnvelope,
  localAesProvider,
} from "@envelope/core";
import { check, rejectsWith } from "../assert.mjs";

const context = { table: "users", column: "ssn", id: "7" };

async function signedMode() {
  const key = localAesProvider({ keys: randomBytes(32) });
  const writerPair = generateSigningKeyPair();
  const otherPair = generateSigningKeyPair();
  const writer = new Envelope({ encrypt: key, signing: { key: writerPair.privateKeyPem } });
  const reader = new Envelope({ encrypt: key, trustedSigners: [writerPair.publicKey] });
  const sealed = await writer.encrypt("078-05-1120", { context });
  check(inspectEnvelope(sealed).signer === writerPair.publicKey, "the value names its signer");
  check(
    (await reader.decrypt(sealed, { context, as: "text" })) === "078-05-1120",
    "pinned reader opens it",
  );
  // Rewrap keeps the signature and needs no signing key.
  const rewrapped = await reader.rewrap(sealed, { context, force: true });
  check(
    (await reader.decrypt(rewrapped, { context, as: "text" })) === "078-05-1120",
    "signature survives rewrap",
  );
  const unsigned = await new Envelope({ encrypt: key }).encrypt("x", { context });
  await rejectsWith(
    "ENVELOPE_UNSIGNED",
    () => reader.decrypt(unsigned, { context }),
    "unsigned value",
  );
  const forged = await new Envelope({
    encrypt: key,
    signing: { key: otherPair.privateKeyPem },
  }).encrypt("x", { context });
  await rejectsWith(
    "ENVELOPE_UNTRUSTED_SIGNER",
    () => reader.decrypt(forged, { context }),
    "another signer",
  );
}

export const signedChecks = [["core: signed mode (Ed25519), pinned signers", signedMode]];
