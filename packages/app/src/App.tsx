import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import { bitbucketSignInModule } from '@bitbucket-signin/backstage-plugin-auth-bitbucket-react';
import { navModule } from './modules/nav';
import { homeModule } from './modules/home';
import { bitbucketTokenModule } from './modules/bitbucketToken';

export default createApp({
  features: [
    catalogPlugin,
    navModule,
    homeModule,
    bitbucketSignInModule,
    bitbucketTokenModule,
  ],
});
