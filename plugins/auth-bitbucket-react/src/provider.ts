import { SignInProviderConfig } from '@backstage/core-components';
import { bitbucketAuthApiRef } from '@backstage/core-plugin-api';

/**
 * The Bitbucket Cloud entry for the `provider` or `providers` prop of
 * Backstage's `SignInPage` (legacy frontend system). It uses the stock
 * `bitbucketAuthApiRef`, which talks to the backend provider `bitbucket`.
 *
 * @public
 */
export const bitbucketSignInProvider: SignInProviderConfig = {
  id: 'bitbucket-auth-provider',
  title: 'Bitbucket',
  message: 'Sign in with your Bitbucket Cloud account',
  apiRef: bitbucketAuthApiRef,
};
