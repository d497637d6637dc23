import type { Page } from 'playwright-core';

/** The portal's Bitbucket sign-in steps, by role and label. */
export class SignInPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  signInButton() {
    return this.page.getByRole('button', { name: 'Sign in with Bitbucket' });
  }

  errorText() {
    return this.page.getByRole('alert');
  }

  /**
   * Clicks "Sign in with Bitbucket" and answers the emulator's consent page
   * in the popup as `user` (its label, e.g. "Jane Doe (jdoe)"). Resolves the
   * sign-in's answer exactly as the app window received it from the popup:
   * `{ response: { backstageIdentity: { identity } } }` or `{ error }`.
   */
  async signInAs(
    user: string,
    decision: 'Grant access' | 'Cancel' = 'Grant access',
  ): Promise<AuthorizationResponse> {
    const answer = this.page.evaluate(
      () =>
        new Promise<any>(resolve => {
          const listener = (event: MessageEvent) => {
            if (event.data?.type === 'authorization_response') {
              window.removeEventListener('message', listener);
              resolve(event.data);
            }
          };
          window.addEventListener('message', listener);
        }),
    );
    const [popup] = await Promise.all([
      this.page.waitForEvent('popup'),
      this.signInButton().click(),
    ]);
    await popup.waitForLoadState();
    if (decision === 'Grant access') {
      await popup.getByRole('radio', { name: user, exact: true }).check();
    }
    await popup.getByRole('button', { name: decision }).click();
    await popup.waitForEvent('close', { timeout: 30_000 });
    return answer;
  }
}

/** What the popup posts to the app window at the end of a sign-in. */
export interface AuthorizationResponse {
  type: 'authorization_response';
  response?: {
    backstageIdentity?: {
      identity: { userEntityRef: string; ownershipEntityRefs: string[] };
    };
  };
  error?: { name: string; message: string };
}
