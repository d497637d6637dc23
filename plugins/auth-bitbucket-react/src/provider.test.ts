import { bitbucketAuthApiRef } from '@backstage/core-plugin-api';
import { bitbucketSignInProvider } from './provider';

describe('bitbucketSignInProvider (legacy SignInPage)', () => {
  it('uses the stock Bitbucket auth API, i.e. the backend provider `bitbucket`', () => {
    expect(bitbucketSignInProvider).toEqual({
      id: 'bitbucket-auth-provider',
      title: 'Bitbucket',
      message: 'Sign in with your Bitbucket Cloud account',
      apiRef: bitbucketAuthApiRef,
    });
    expect(bitbucketSignInProvider.apiRef.id).toBe('core.auth.bitbucket');
  });
});
