import { ConfigError } from "../errors.js";
import { localAesFactory } from "./local-aes.js";
import type { ProviderFactory } from "./types.js";

type Loader = () => Promise<ProviderFactory>;

// Each scheme maps to the package that implements it. Packages load only when config
// names them, so an app that uses local-rsa never needs a cloud SDK installed.
const PACKAGES: Record<string, string> = {
  "local-rsa": "@envelope/local-rsa",
  "aws-kms": "@envelope/aws-kms",
  "azure-kv": "@envelope/azure-keyvault",
  "vault-transit": "@envelope/vault",
};

// Built into core: no extra package to install.
const BUILT_IN: Record<string, Loader> = { "local-aes": async () => localAesFactory };
const custom = new Map<string, Loader>();

/** Options of `registerProvider`. */
export interface RegisterProviderOptions {
  /**
   * Replace a built-in scheme (`local-aes`, `local-rsa`, `aws-kms`, `azure-kv`,
   * `vault-transit`). Without it that is refused: a dependency that registers one would
   * otherwise silently take over every key URI of that scheme.
   */
  override?: boolean;
}

/**
 * Registers the factory for a URI scheme, for in-house KMSs or tests. A built-in scheme
 * is replaced only with `{ override: true }`; otherwise ConfigError ENVELOPE_BAD_CONFIG.
 *
 * @example
 * registerProvider("my-kms", async () => myKmsFactory);
 * registerProvider("aws-kms", async () => patchedAwsFactory, { override: true }); // tests
 */
export function registerProvider(
  scheme: string,
  loader: Loader,
  options: RegisterProviderOptions = {},
): void {
  if (!/^[a-z][a-z0-9-]*$/.test(scheme)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Invalid provider scheme "${scheme}": use lowercase letters, digits and dashes.`,
    );
  }
  if (isBuiltInScheme(scheme) && options.override !== true) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `registerProvider: "${scheme}" is a built-in scheme. Pick another name for your provider, or pass { override: true } to replace the built-in one on purpose.`,
      { details: { field: "scheme" } },
    );
  }
  custom.set(scheme, loader);
}

/** True for the schemes Envelope ships (in core or as its provider packages). */
export function isBuiltInScheme(scheme: string): boolean {
  return Object.hasOwn(PACKAGES, scheme) || Object.hasOwn(BUILT_IN, scheme);
}

/** Schemes that config may name, built in or registered. */
export function knownSchemes(): string[] {
  return [...new Set([...Object.keys(BUILT_IN), ...Object.keys(PACKAGES), ...custom.keys()])];
}

export async function loadFactory(scheme: string, field: string): Promise<ProviderFactory> {
  const loader =
    custom.get(scheme) ?? (Object.hasOwn(BUILT_IN, scheme) ? BUILT_IN[scheme] : undefined);
  if (loader) {
    let factory: ProviderFactory;
    try {
      factory = await loader();
    } catch (cause) {
      // A registered loader is usually `() => import("some-package")`: same failure as below.
      throw new ConfigError(
        "ENVELOPE_PROVIDER_NOT_INSTALLED",
        `${field} uses the "${scheme}" provider, but its registered loader failed. Check that the package it imports is installed; see \`cause\`.`,
        { cause, details: { field } },
      );
    }
    return checkFactory(factory, scheme);
  }
  const pkg = Object.hasOwn(PACKAGES, scheme) ? PACKAGES[scheme] : undefined;
  if (!pkg) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${field}: unknown provider "${scheme}". Use one of ${knownSchemes().join(", ")}, or registerProvider() your own.`,
      { details: { field } },
    );
  }
  let mod: { providerFactory?: ProviderFactory };
  try {
    mod = await importPackage(pkg);
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      `${field} uses the "${scheme}" provider, but ${pkg} could not be loaded. Install it: npm install ${pkg}`,
      { cause, details: { field, package: pkg } },
    );
  }
  if (!mod.providerFactory) {
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      `${pkg} does not export providerFactory; upgrade it.`,
    );
  }
  return checkFactory(mod.providerFactory, scheme);
}

function checkFactory(factory: ProviderFactory, scheme: string): ProviderFactory {
  if (
    !factory ||
    typeof factory.fromUri !== "function" ||
    typeof factory.fromConfig !== "function"
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `The provider factory for "${scheme}" is not a ProviderFactory.`,
    );
  }
  return factory;
}

// The specifier is a variable on purpose: core must not depend on its provider packages
// at build time (they depend on core). Node resolves it at run time from the app.
function importPackage(pkg: string): Promise<{ providerFactory?: ProviderFactory }> {
  return import(pkg);
}
