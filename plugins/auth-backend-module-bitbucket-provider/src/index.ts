/**
 * Sign in to Backstage with Bitbucket Cloud: the `bitbucket` auth provider
 * module, with working email resolvers, configurable URLs and errors that
 * name the fix.
 *
 * @packageDocumentation
 */

export { authModuleBitbucketProvider as default } from './module';
export { bitbucketAuthenticator } from './authenticator';
export { bitbucketSignInResolvers } from './resolvers';
export { redactOAuthRequestLog } from './requestLog';
export type { RequestLogConfigureContext } from './requestLog';
export type {
  BitbucketProfile,
  BitbucketEmail,
  BitbucketWorkspace,
} from './profile';
