// The official AWS SDK client, as @envelope/aws-kms resolves it (the monorepo root does not
// depend on it), for the tests that speak to ./server.ts directly.
import { createRequire } from "node:module";

type ClientKms = typeof import("../../../packages/aws-kms/node_modules/@aws-sdk/client-kms");

const require = createRequire(new URL("../../../packages/aws-kms/package.json", import.meta.url));
export const sdk = require("@aws-sdk/client-kms") as ClientKms;
