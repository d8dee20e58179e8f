/**
 * Runs the example application against whichever master key the environment names:
 *
 *   ENVELOPE_ENCRYPT_KEYS=local-rsa:///abs/path/key.pem            pnpm start
 *   ENVELOPE_ENCRYPT_KEYS=aws-kms://arn:aws:kms:…:key/…            pnpm start
 *   ENVELOPE_ENCRYPT_KEYS=azure-kv://<vault>.vault.azure.net/keys/<name>  pnpm start
 *   ENVELOPE_ENCRYPT_KEYS=vault-transit://vault:8200/transit/keys/pii     pnpm start
 *
 * Prints key references and sealed-value prefixes only, never the plaintext.
 */
import { EnvelopeError, envelopeFromEnv } from "@envelope/core";
import { SAMPLE_PEOPLE, storeAndReadBack } from "./app.js";

async function main(): Promise<void> {
  if (!process.env.ENVELOPE_ENCRYPT_KEYS) {
    console.error(
      "Set ENVELOPE_ENCRYPT_KEYS to a key URI first (see examples/provider-switch/README.md), e.g.\n" +
        "  ENVELOPE_ENCRYPT_KEYS=local-rsa:///absolute/path/to/key.pem pnpm start",
    );
    process.exitCode = 2;
    return;
  }
  // The only place a provider is chosen: the environment.
  const envelope = await envelopeFromEnv();
  console.log(`Configured keys: ${JSON.stringify(envelope.describe())}`);

  const started = performance.now();
  const result = await storeAndReadBack(envelope);
  const ms = (performance.now() - started).toFixed(0);
  const same = JSON.stringify(result.people) === JSON.stringify(SAMPLE_PEOPLE);

  console.log(`Sealed ${result.sealedValues} values under: ${result.sealedUnder.join(", ")}`);
  console.log(
    `Read back ${result.people.length} people: ${same ? "all values match" : "MISMATCH"}`,
  );
  console.log(`Round trip took ${ms} ms`);
  if (!same) process.exitCode = 1;
}

main().catch((error: unknown) => {
  // Envelope errors carry a stable code and a message that says what to fix.
  if (EnvelopeError.isInstance(error)) {
    console.error(`${error.code}: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
