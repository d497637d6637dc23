import { createFrontendModule } from '@backstage/frontend-plugin-api';
import { bitbucketTokenPage } from './page';
import { scmAuthApi } from './scmAuthApi';

/**
 * The app's `scmAuthApiRef` for the configured Bitbucket Cloud host, and a
 * page (/bitbucket-token) that asks it for tokens as other plugins do.
 */
export const bitbucketTokenModule = createFrontendModule({
  pluginId: 'app',
  extensions: [scmAuthApi, bitbucketTokenPage],
});
