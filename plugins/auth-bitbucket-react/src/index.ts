/**
 * The "Sign in with Bitbucket" page for Backstage apps: a module for the new
 * frontend system and a provider config and page for the legacy one.
 *
 * @packageDocumentation
 */

export { bitbucketSignInModule, bitbucketSignInPage } from './module';
export { bitbucketSignInProvider } from './provider';
export { BitbucketSignInPage } from './components/BitbucketSignInPage';
