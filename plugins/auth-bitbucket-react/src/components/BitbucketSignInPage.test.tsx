import { bitbucketAuthApiRef, configApiRef } from '@backstage/core-plugin-api';
import {
  mockApis,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  BitbucketSignInPage,
  readableSignInError,
} from './BitbucketSignInPage';

const identity = {
  type: 'user' as const,
  userEntityRef: 'user:default/jane.doe',
  ownershipEntityRefs: ['user:default/jane.doe'],
};

async function renderPage(authApi: Record<string, jest.Mock>) {
  const onSignInSuccess = jest.fn();
  await renderInTestApp(
    <TestApiProvider
      apis={[
        [bitbucketAuthApiRef, authApi],
        [
          configApiRef,
          mockApis.config({ data: { app: { title: 'Acme Portal' } } }),
        ],
      ]}
    >
      <BitbucketSignInPage onSignInSuccess={onSignInSuccess} />
    </TestApiProvider>,
  );
  return onSignInSuccess;
}

describe('BitbucketSignInPage', () => {
  it('signs in through the popup and hands over the identity', async () => {
    const getBackstageIdentity = jest
      .fn()
      .mockResolvedValueOnce(undefined) // no session to restore
      .mockResolvedValueOnce({ token: 't', identity });
    const getProfile = jest.fn().mockResolvedValue({ displayName: 'Jane Doe' });
    const onSignInSuccess = await renderPage({
      getBackstageIdentity,
      getProfile,
    });

    await userEvent.click(
      await screen.findByRole('button', { name: 'Sign in with Bitbucket' }),
    );
    await waitFor(() => expect(onSignInSuccess).toHaveBeenCalledTimes(1));
    expect(getBackstageIdentity.mock.calls).toEqual([
      [{ instantPopup: false, optional: true }],
      [{ instantPopup: true, optional: false }],
    ]);
    const user = onSignInSuccess.mock.calls[0][0];
    expect(await user.getBackstageIdentity()).toEqual(identity);
    expect(await user.getProfileInfo()).toEqual({ displayName: 'Jane Doe' });
    expect(screen.getByText('Sign in to Acme Portal')).toBeInTheDocument();
  });

  it('restores an existing session without a click', async () => {
    const onSignInSuccess = await renderPage({
      getBackstageIdentity: jest
        .fn()
        .mockResolvedValue({ token: 't', identity }),
      getProfile: jest.fn().mockResolvedValue({}),
    });
    await waitFor(() => expect(onSignInSuccess).toHaveBeenCalledTimes(1));
  });

  it('shows why the sign-in failed, as text on the page', async () => {
    const failure = new Error(
      'Signed in to Bitbucket as Carol Contractor ({c27d}), but no matching User was found in the Backstage catalog.',
    );
    failure.name = 'NotFoundError';
    const onSignInSuccess = await renderPage({
      getBackstageIdentity: jest
        .fn()
        .mockResolvedValueOnce(undefined)
        .mockRejectedValueOnce(failure),
      getProfile: jest.fn(),
    });
    await userEvent.click(
      await screen.findByRole('button', { name: 'Sign in with Bitbucket' }),
    );
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'Signed in to Bitbucket as Carol Contractor ({c27d}), but no matching User was found in the Backstage catalog.',
    );
    expect(onSignInSuccess).not.toHaveBeenCalled();
  });
});

describe('readableSignInError', () => {
  it.each([
    [
      new Error(
        'Login failed; caused by NotAllowedError: Sign-in was cancelled.',
      ),
      'Sign-in was cancelled.',
    ],
    [
      new Error('Login failed, popup was closed'),
      'The Bitbucket sign-in window was closed before sign-in finished. Click "Sign in with Bitbucket" to try again.',
    ],
    ['plain', 'plain'],
  ])('%s', (error, text) => {
    expect(readableSignInError(error)).toBe(text);
  });
});
