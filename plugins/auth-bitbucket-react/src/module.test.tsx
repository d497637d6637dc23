import { bitbucketAuthApiRef } from '@backstage/core-plugin-api';
import { createExtensionTester } from '@backstage/frontend-test-utils';
import { SignInPageBlueprint } from '@backstage/plugin-app-react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { screen } from '@testing-library/react';
import { bitbucketSignInModule, bitbucketSignInPage } from './module';

describe('bitbucketSignInModule (new frontend system)', () => {
  it('is a module of the app plugin carrying the sign-in page', () => {
    expect(bitbucketSignInModule.$$type).toBe('@backstage/FrontendModule');
    expect((bitbucketSignInModule as any).pluginId).toBe('app');
    expect(
      (bitbucketSignInModule as any).extensions.map((e: any) => e.id),
    ).toEqual(['sign-in-page:app']);
    expect((bitbucketSignInPage as any).kind).toBe('sign-in-page');
  });

  it('provides a sign-in page with the Bitbucket button', async () => {
    const tester = createExtensionTester(bitbucketSignInPage);
    const SignInPage = tester.get(SignInPageBlueprint.dataRefs.component);
    const authApi = {
      getBackstageIdentity: jest.fn().mockResolvedValue(undefined),
      getProfile: jest.fn(),
    };
    await renderInTestApp(
      <TestApiProvider apis={[[bitbucketAuthApiRef, authApi]]}>
        <SignInPage onSignInSuccess={jest.fn()} />
      </TestApiProvider>,
    );
    expect(
      await screen.findByRole('button', { name: 'Sign in with Bitbucket' }),
    ).toBeInTheDocument();
    expect(authApi.getBackstageIdentity).toHaveBeenCalledWith({
      instantPopup: false,
      optional: true,
    });
  });
});
