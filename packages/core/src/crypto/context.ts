// The canonical context encoding is part of the format (docs/FORMAT.md) and lives in
// format/context.ts. This re-export keeps `providers/types.ts` (owned by the provider
// work) compiling until it imports format/context.ts directly.
export type { EncryptionContext } from "../format/context.js";
