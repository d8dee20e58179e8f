/**
 * @envelope/aws-kms — AWS KMS master keys for @envelope/core, on @aws-sdk/client-kms.
 */

export type { AwsCredentials, KmsClientLike, KmsSendOptions } from "./client.js";
export { type KmsContextMapping, mapContext } from "./context.js";
export { AwsKmsServiceError, classifyAwsError } from "./errors.js";
export { providerFactory } from "./factory.js";
export { type KeyPolicy, type KeyPolicySettings, keyPolicy } from "./key-policy.js";
export { type KmsKeyId, parseKeyId } from "./key-ref.js";
export {
  AWS_KMS_PROVIDER_ID,
  type AwsKmsProvider,
  type AwsKmsProviderOptions,
  awsKmsProvider,
  type DiscoveryOption,
} from "./provider.js";
