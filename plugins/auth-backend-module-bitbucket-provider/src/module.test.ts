import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { decodeOAuthState } from '@backstage/plugin-auth-node';
import authPlugin from '@backstage/plugin-auth-backend';
import { JsonObject } from '@backstage/types';
import request from 'supertest';
import authModuleBitbucketProvider from './index';

async function startBackend(bitbucket: JsonObject) {
  return startTestBackend({
    features: [
      authPlugin,
      authModuleBitbucketProvider,
      mockServices.rootConfig.factory({
        data: {
          app: { baseUrl: 'http://localhost:3000' },
          auth: { providers: { bitbucket } },
        },
      }),
    ],
  });
}

describe('authModuleBitbucketProvider', () => {
  it('redirects /start to Bitbucket with the exact query, nonce cookie and state', async () => {
    const { server } = await startBackend({
      development: {
        clientId: 'my-client-id',
        clientSecret: 'my-client-secret',
      },
    });
    const agent = request.agent(server);
    const res = await agent.get(
      '/api/auth/bitbucket/start?env=development&origin=http%3A%2F%2Flocalhost%3A3000&flow=popup',
    );

    expect(res.status).toBe(302);
    const nonceCookie = agent.jar.getCookie('bitbucket-nonce', {
      domain: '127.0.0.1',
      path: '/api/auth/bitbucket/handler',
      script: false,
      secure: false,
    });
    expect(nonceCookie).toBeDefined();

    const location = new URL(res.header.location);
    expect(location.origin).toBe('https://bitbucket.org');
    expect(location.pathname).toBe('/site/oauth2/authorize');
    expect(Object.fromEntries(location.searchParams)).toEqual({
      response_type: 'code',
      client_id: 'my-client-id',
      redirect_uri: `http://localhost:${server.port()}/api/auth/bitbucket/handler/frame`,
      scope: 'account email',
      state: expect.any(String),
    });
    expect(decodeOAuthState(location.searchParams.get('state')!)).toEqual({
      env: 'development',
      nonce: decodeURIComponent(nonceCookie!.value),
      origin: 'http://localhost:3000',
      flow: 'popup',
      scope: 'account email',
    });
  });

  it('uses baseUrl and adds additionalScopes', async () => {
    const { server } = await startBackend({
      development: {
        clientId: 'id',
        clientSecret: 'secret',
        baseUrl: 'http://127.0.0.1:7100',
        additionalScopes: ['team'],
      },
    });
    const res = await request(server).get(
      '/api/auth/bitbucket/start?env=development',
    );
    const location = new URL(res.header.location);
    expect(`${location.origin}${location.pathname}`).toBe(
      'http://127.0.0.1:7100/site/oauth2/authorize',
    );
    expect(location.searchParams.get('scope')).toBe('account email team');
  });

  it('refuses to start with a config error that names the key', async () => {
    await expect(
      startBackend({
        production: {
          clientId: 'id',
          clientSecret: 'secret',
          allowedWorkspace: ['acme'],
        },
      }),
    ).rejects.toThrow(
      "Failed to initialize bitbucket auth provider, Unknown config key 'auth.providers.bitbucket.production.allowedWorkspace'",
    );
  });

  it('refuses to start with whitespace in the secret, without printing it', async () => {
    const start = startBackend({
      development: { clientId: 'id', clientSecret: 'hunter2 ' },
    });
    await expect(start).rejects.toThrow(
      "Invalid config value at 'auth.providers.bitbucket.development.clientSecret': it contains whitespace",
    );
    await expect(start).rejects.not.toThrow(/hunter2/);
  });

  it('boots with an upstream-style config (migration)', async () => {
    // the config of @backstage/plugin-auth-backend-module-bitbucket-provider,
    // where the local-part resolver never matched (no email): here it
    // needs allowedDomains, else anyone's jane.doe@… would be user:default/jane.doe
    const { server } = await startBackend({
      development: {
        clientId: 'upstream-client-id',
        clientSecret: 'upstream-client-secret',
        callbackUrl: 'http://localhost:7007/api/auth/bitbucket/handler/frame',
        additionalScopes: 'repository',
        sessionDuration: { days: 7 },
        signIn: {
          resolvers: [
            { resolver: 'usernameMatchingUserEntityAnnotation' },
            {
              resolver: 'userIdMatchingUserEntityAnnotation',
              dangerouslyAllowSignInWithoutUserInCatalog: false,
            },
            { resolver: 'emailMatchingUserEntityProfileEmail' },
            {
              resolver: 'emailLocalPartMatchingUserEntityName',
              allowedDomains: ['example.com'],
            },
          ],
        },
      },
    });
    const res = await request(server).get(
      '/api/auth/bitbucket/start?env=development',
    );
    expect(res.status).toBe(302);
    const location = new URL(res.header.location);
    expect(Object.fromEntries(location.searchParams)).toEqual({
      response_type: 'code',
      client_id: 'upstream-client-id',
      redirect_uri: 'http://localhost:7007/api/auth/bitbucket/handler/frame',
      scope: 'account email repository',
      state: expect.any(String),
    });
  });
});
