/**
 * Bitbucket Cloud workspace members as catalog `User` entities and
 * workspaces as `Group` entities, annotated so that the Bitbucket sign-in
 * resolvers find them.
 *
 * @packageDocumentation
 */

export { catalogModuleBitbucketCloudOrg as default } from './module';
export {
  bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
  type BitbucketCloudOrgEntityProviderTransformsExtensionPoint,
} from './extensionPoint';
export {
  bitbucketCloudUserEntityName,
  defaultBitbucketCloudGroupTransformer,
  defaultBitbucketCloudUserTransformer,
} from './transformers';
export type {
  BitbucketCloudGroupTransformer,
  BitbucketCloudMember,
  BitbucketCloudTransformerContext,
  BitbucketCloudUserTransformer,
  BitbucketCloudWorkspace,
} from './transformers';
