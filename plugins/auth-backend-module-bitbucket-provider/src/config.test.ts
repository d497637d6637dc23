import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { nearestKnownKey, readBitbucketProviderSettings } from './config';

const path = 'auth.providers.bitbucket.development';
const read = (data: JsonObject) =>
  readBitbucketProviderSettings(new ConfigReader(data), path);

describe('readBitbucketProviderSettings', () => {
  it('defaults to Bitbucket Cloud URLs', () => {
    expect(read({ clientId: 'key', clientSecret: 'secret' })).toEqual({
      clientId: 'key',
      clientSecret: 'secret',
      authorizationUrl: 'https://bitbucket.org/site/oauth2/authorize',
      tokenUrl: 'https://bitbucket.org/site/oauth2/access_token',
      apiBaseUrl: 'https://api.bitbucket.org/2.0',
      requestTimeoutMs: 10000,
    });
  });

  it('builds the endpoints from baseUrl and apiBaseUrl', () => {
    expect(
      read({
        clientId: 'key',
        clientSecret: 'secret',
        baseUrl: 'http://127.0.0.1:7100/',
        apiBaseUrl: 'http://localhost:7100/2.0/',
        requestTimeout: 2500,
      }),
    ).toEqual({
      clientId: 'key',
      clientSecret: 'secret',
      authorizationUrl: 'http://127.0.0.1:7100/site/oauth2/authorize',
      tokenUrl: 'http://127.0.0.1:7100/site/oauth2/access_token',
      apiBaseUrl: 'http://localhost:7100/2.0',
      requestTimeoutMs: 2500,
    });
  });

  it('names the missing key', () => {
    expect(() => read({ clientSecret: 'secret' })).toThrow(
      "Missing required config value at 'auth.providers.bitbucket.development.clientId': set it to the Key of your Bitbucket OAuth consumer (Workspace settings > OAuth consumers).",
    );
    expect(() => read({ clientId: 'key' })).toThrow(
      "Missing required config value at 'auth.providers.bitbucket.development.clientSecret': set it to the Secret of your Bitbucket OAuth consumer",
    );
  });

  it('rejects whitespace in credentials without echoing them', () => {
    const run = () => read({ clientId: 'key', clientSecret: 's3cr3t\n' });
    expect(run).toThrow(
      "Invalid config value at 'auth.providers.bitbucket.development.clientSecret': it contains whitespace (often a trailing space or newline from copy-paste). Remove the whitespace; Bitbucket consumer keys and secrets never contain any.",
    );
    expect(() => run()).not.toThrow(/s3cr3t/);
    expect(() => read({ clientId: ' key', clientSecret: 'secret' })).toThrow(
      /development\.clientId': it contains whitespace/,
    );
  });

  it('allows plain http only for loopback hosts', () => {
    expect(() =>
      read({
        clientId: 'key',
        clientSecret: 'secret',
        baseUrl: 'http://bitbucket.example.com',
      }),
    ).toThrow(
      "Invalid config value at 'auth.providers.bitbucket.development.baseUrl': plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https for 'bitbucket.example.com'.",
    );
    expect(() =>
      read({ clientId: 'key', clientSecret: 'secret', apiBaseUrl: 'nope' }),
    ).toThrow(
      "Invalid config value at 'auth.providers.bitbucket.development.apiBaseUrl': 'nope' is not an absolute URL; use e.g. 'https://api.bitbucket.org/2.0'.",
    );
  });

  it('rejects a bad requestTimeout', () => {
    expect(() =>
      read({ clientId: 'key', clientSecret: 'secret', requestTimeout: -1 }),
    ).toThrow(
      "Invalid config value at 'auth.providers.bitbucket.development.requestTimeout': expected a positive number of milliseconds, e.g. 10000.",
    );
  });

  it('reports an unknown key with the nearest known one', () => {
    expect(() =>
      read({ clientId: 'key', clientSecret: 'secret', clientSecet: 'x' }),
    ).toThrow(
      "Unknown config key 'auth.providers.bitbucket.development.clientSecet' (did you mean 'clientSecret'?). The Bitbucket provider reads only: clientId, clientSecret, callbackUrl, additionalScopes, sessionDuration, signIn, baseUrl, apiBaseUrl, requestTimeout. Fix or remove the key so that no setting is silently ignored.",
    );
  });

  it('accepts every key of the upstream module unchanged', () => {
    expect(() =>
      read({
        clientId: 'key',
        clientSecret: 'secret',
        callbackUrl:
          'https://backstage.example.com/api/auth/bitbucket/handler/frame',
        additionalScopes: ['repository'],
        sessionDuration: '7d',
        signIn: {
          resolvers: [{ resolver: 'userIdMatchingUserEntityAnnotation' }],
        },
      }),
    ).not.toThrow();
  });
});

describe('nearestKnownKey', () => {
  it.each([
    ['clientid', 'clientId'],
    ['apiBaseURL', 'apiBaseUrl'],
    ['baseurl', 'baseUrl'],
    ['signin', 'signIn'],
    ['additionalScope', 'additionalScopes'],
    ['somethingElseEntirely', undefined],
  ])('%s → %s', (key, expected) => {
    expect(nearestKnownKey(key)).toBe(expected);
  });
});
