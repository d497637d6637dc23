import {
  ApiBlueprint,
  bitbucketAuthApiRef,
  configApiRef,
  githubAuthApiRef,
  gitlabAuthApiRef,
  microsoftAuthApiRef,
} from '@backstage/frontend-plugin-api';
import { ScmAuth, scmAuthApiRef } from '@backstage/integration-react';

/** The config key naming the Bitbucket Cloud site the app asks tokens for. */
export const BITBUCKET_BASE_URL_KEY = 'scmAuth.bitbucketCloud.baseUrl';

/**
 * The app's `scmAuthApiRef`, as Backstage's default (GitHub, GitLab, Azure,
 * Bitbucket) but with the Bitbucket Cloud host read from
 * `scmAuth.bitbucketCloud.baseUrl` (default https://bitbucket.org): the
 * scaffolder, catalog import and other plugins get the signed-in user's
 * Bitbucket token, through the `bitbucket` sign-in provider, for URLs on that
 * host (the emulator's in the demo).
 */
export const scmAuthApi = ApiBlueprint.make({
  name: 'scm-auth',
  params: defineParams =>
    defineParams({
      api: scmAuthApiRef,
      deps: {
        configApi: configApiRef,
        github: githubAuthApiRef,
        gitlab: gitlabAuthApiRef,
        azure: microsoftAuthApiRef,
        bitbucket: bitbucketAuthApiRef,
      },
      factory: ({ configApi, github, gitlab, azure, bitbucket }) =>
        ScmAuth.merge(
          ScmAuth.forGithub(github),
          ScmAuth.forGitlab(gitlab),
          ScmAuth.forAzure(azure),
          ScmAuth.forBitbucket(bitbucket, {
            host: bitbucketHost(
              configApi.getOptionalString(BITBUCKET_BASE_URL_KEY),
            ),
          }),
        ),
    }),
});

/** The host of `baseUrl` (with its port), or bitbucket.org. */
export function bitbucketHost(baseUrl: string | undefined): string {
  if (!baseUrl) return 'bitbucket.org';
  try {
    return new URL(baseUrl).host;
  } catch {
    throw new Error(
      `${BITBUCKET_BASE_URL_KEY} must be a URL such as https://bitbucket.org, got "${baseUrl}"`,
    );
  }
}
