import { createFrontendModule } from '@backstage/frontend-plugin-api';
import { SignInPageBlueprint } from '@backstage/plugin-app-react';

/**
 * The Bitbucket sign-in page as an extension of the new frontend system.
 *
 * @public
 */
export const bitbucketSignInPage = SignInPageBlueprint.make({
  params: {
    loader: async () => {
      const { BitbucketSignInPage } = await import(
        './components/BitbucketSignInPage'
      );
      return BitbucketSignInPage;
    },
  },
});

/**
 * Adds the Bitbucket sign-in page to an app of the new frontend system:
 * `createApp({ features: [bitbucketSignInModule] })`.
 *
 * @public
 */
export const bitbucketSignInModule = createFrontendModule({
  pluginId: 'app',
  extensions: [bitbucketSignInPage],
});
