import { PageBlueprint } from '@backstage/frontend-plugin-api';

/** The /bitbucket-token page. */
export const bitbucketTokenPage = PageBlueprint.make({
  name: 'bitbucket-token',
  params: {
    path: '/bitbucket-token',
    title: 'Bitbucket token',
    loader: async () => {
      const { BitbucketTokenPage } = await import('./BitbucketTokenPage');
      return <BitbucketTokenPage />;
    },
  },
});
