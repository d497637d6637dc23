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
      workspaces: {
        allowed: undefined,
        minimumRole: undefined,
        ownership: { enabled: false, namespace: 'default', prefix: '' },
      },
      profileCacheTtlMs: 30 * 60 * 1000,
      identityCacheTtlMs: 8 * 3600 * 1000,
      refreshGracePeriodMs: 60000,
      signInTimeoutMs: 30000,
      accountSignInsPerHour: 5,
      needsWorkspaces: false,
      membershipSource: 'catalog',
      catalogMaxAgeMs: 3600 * 1000,
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
      workspaces: expect.any(Object),
      profileCacheTtlMs: 30 * 60 * 1000,
      identityCacheTtlMs: 8 * 3600 * 1000,
      refreshGracePeriodMs: 60000,
      signInTimeoutMs: 30000,
      accountSignInsPerHour: 5,
      needsWorkspaces: false,
      membershipSource: 'catalog',
      catalogMaxAgeMs: 3600 * 1000,
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
      "Unknown config key 'auth.providers.bitbucket.development.clientSecet' (did you mean 'clientSecret'?). The Bitbucket provider reads only: clientId, clientSecret, callbackUrl, additionalScopes, sessionDuration, signIn, baseUrl, apiBaseUrl, requestTimeout, allowedWorkspaces, minimumWorkspaceRole, workspaceOwnership, profileCacheTtl, identityCacheTtl, refreshGracePeriod, signInTimeout, accountSignInsPerHour, preconnectHoldTime, workspaceMembershipSource, workspaceMembershipCatalogMaxAge. Fix or remove the key so that no setting is silently ignored.",
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

describe('workspace and cache settings', () => {
  const base = { clientId: 'key', clientSecret: 'secret' };

  it('reads allowedWorkspaces, the minimum role and ownership', () => {
    const settings = read({
      ...base,
      allowedWorkspaces: [
        'ACME',
        'platform',
        'acme',
        '{0E6A3D1F-8C52-4B97-A4E0-7F2B9C5D1E83}',
      ],
      minimumWorkspaceRole: 'owner',
      workspaceOwnership: {
        enabled: true,
        namespace: 'bitbucket',
        prefix: 'ws-',
      },
      profileCacheTtl: { minutes: 5 },
    });
    expect(settings.workspaces).toEqual({
      allowed: [
        { kind: 'slug', slug: 'acme' },
        { kind: 'slug', slug: 'platform' },
        { kind: 'uuid', uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}' },
      ],
      minimumRole: 'owner',
      ownership: { enabled: true, namespace: 'bitbucket', prefix: 'ws-' },
    });
    expect(settings.profileCacheTtlMs).toBe(300000);
    expect(settings.needsWorkspaces).toBe(true);
  });

  it('the least role is member with an allow-list, and none without', () => {
    expect(read({ ...base, allowedWorkspaces: ['acme'] }).workspaces).toEqual({
      allowed: [{ kind: 'slug', slug: 'acme' }],
      minimumRole: 'member',
      ownership: { enabled: false, namespace: 'default', prefix: '' },
    });
    expect(read(base).workspaces.minimumRole).toBeUndefined();
  });

  it('reads the session settings', () => {
    const settings = read({
      ...base,
      profileCacheTtl: '10m',
      identityCacheTtl: { hours: 8 },
      refreshGracePeriod: '30s',
      signInTimeout: 5000,
      accountSignInsPerHour: 0,
    });
    expect(settings).toMatchObject({
      profileCacheTtlMs: 600000,
      identityCacheTtlMs: 8 * 3600 * 1000,
      refreshGracePeriodMs: 30000,
      signInTimeoutMs: 5000,
      accountSignInsPerHour: 0,
    });
    // the identity is kept at least as long as the workspace check
    expect(read({ ...base, profileCacheTtl: '10h' }).identityCacheTtlMs).toBe(
      10 * 3600 * 1000,
    );
  });

  it('reads the membership source and the catalog listing age', () => {
    expect(
      read({
        ...base,
        workspaceMembershipSource: 'bitbucket',
      }),
    ).toMatchObject({ membershipSource: 'bitbucket' });
    expect(
      read({ ...base, workspaceMembershipCatalogMaxAge: { minutes: 90 } }),
    ).toMatchObject({
      membershipSource: 'catalog',
      catalogMaxAgeMs: 90 * 60 * 1000,
    });
  });

  it.each([
    ['0 disables the cache', 0, 0],
    ['a string duration', '90s', 90000],
    ['an ISO duration', 'PT2M', 120000],
  ])('profileCacheTtl: %s', (_, value, ms) => {
    expect(read({ ...base, profileCacheTtl: value }).profileCacheTtlMs).toBe(
      ms,
    );
  });

  it.each([
    [
      { allowedWorkspaces: 'acme' },
      "Invalid config value at 'auth.providers.bitbucket.development.allowedWorkspaces': expected a non-empty list of workspace uuids with their braces (recommended: they never change), or slugs (the part after bitbucket.org/ in the workspace URL), e.g. ['{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', acme-contractors].",
    ],
    [
      { allowedWorkspaces: ['0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83'] },
      "Invalid config value at 'auth.providers.bitbucket.development.allowedWorkspaces': expected a non-empty list of workspace uuids with their braces",
    ],
    [
      { workspaceOwnership: { enabled: true } },
      "Config value at 'auth.providers.bitbucket.development.workspaceOwnership' needs 'auth.providers.bitbucket.development.allowedWorkspaces': anyone can create a Bitbucket workspace with a free slug such as 'platform', so ownership is granted only for the workspaces you list there.",
    ],
    [
      { identityCacheTtl: '1m' },
      "Invalid config value at 'auth.providers.bitbucket.development.identityCacheTtl': it must be at least profileCacheTtl (1800 s), since the workspace check re-reads only the workspace roles.",
    ],
    [
      { workspaceMembershipSource: 'Catalog' },
      "Invalid config value at 'auth.providers.bitbucket.development.workspaceMembershipSource': expected 'catalog' (the members the Bitbucket Cloud org import wrote to the catalog, Bitbucket on a miss) or 'bitbucket' (ask Bitbucket at every workspace check), got 'Catalog'.",
    ],
    [
      { workspaceMembershipCatalogMaxAge: 'soon' },
      "Invalid config value at 'auth.providers.bitbucket.development.workspaceMembershipCatalogMaxAge': expected a duration from 1 minute to 24 hours such as '1h', { hours: 1 } or 'PT1H': a listing older than this is not used, and Bitbucket is asked instead.",
    ],
    [
      { workspaceMembershipCatalogMaxAge: '2d' },
      "Invalid config value at 'auth.providers.bitbucket.development.workspaceMembershipCatalogMaxAge': expected a duration from 1 minute to 24 hours such as '1h', { hours: 1 } or 'PT1H': a listing older than this is not used, and Bitbucket is asked instead.",
    ],
    [
      {
        workspaceMembershipSource: 'bitbucket',
        workspaceMembershipCatalogMaxAge: '2h',
      },
      "Config value at 'auth.providers.bitbucket.development.workspaceMembershipCatalogMaxAge' is read only with workspaceMembershipSource 'catalog': remove it, or set workspaceMembershipSource to 'catalog'.",
    ],
    [
      { refreshGracePeriod: '1h' },
      "Invalid config value at 'auth.providers.bitbucket.development.refreshGracePeriod': at most 10 minutes; the period bounds how long a used refresh token can still be replayed.",
    ],
    [
      { signInTimeout: -1 },
      "Invalid config value at 'auth.providers.bitbucket.development.signInTimeout': expected a positive number of milliseconds, e.g. 30000.",
    ],
    [
      { accountSignInsPerHour: 2.5 },
      "Invalid config value at 'auth.providers.bitbucket.development.accountSignInsPerHour': expected a whole number >= 0 (0 turns the limit off), e.g. 5.",
    ],
    [
      { allowedWorkspaces: [] },
      "Invalid config value at 'auth.providers.bitbucket.development.allowedWorkspaces'",
    ],
    [
      { allowedWorkspaces: ['acme'], minimumWorkspaceRole: 'admin' },
      "Invalid config value at 'auth.providers.bitbucket.development.minimumWorkspaceRole': expected one of collaborator, member, owner, got 'admin'.",
    ],
    [
      { minimumWorkspaceRole: 'owner' },
      "Config value at 'auth.providers.bitbucket.development.minimumWorkspaceRole' needs 'auth.providers.bitbucket.development.allowedWorkspaces': the role is checked in the allowed workspaces only.",
    ],
    [
      { workspaceOwnership: { enable: true } },
      "Unknown config key 'auth.providers.bitbucket.development.workspaceOwnership.enable'. 'auth.providers.bitbucket.development.workspaceOwnership' reads only: enabled, namespace, prefix.",
    ],
    [
      { workspaceOwnership: { enabled: 'yes' } },
      "Invalid config value at 'auth.providers.bitbucket.development.workspaceOwnership.enabled': expected true or false.",
    ],
    [
      { profileCacheTtl: 'soon' },
      "Invalid config value at 'auth.providers.bitbucket.development.profileCacheTtl': expected a duration such as '30m', { minutes: 30 } or 'PT30M', or 0 to disable it.",
    ],
    [
      { allowedWorkspace: ['acme'] },
      "Unknown config key 'auth.providers.bitbucket.development.allowedWorkspace' (did you mean 'allowedWorkspaces'?)",
    ],
  ])('rejects %j', (extra, message) => {
    expect(() => read({ ...base, ...(extra as JsonObject) })).toThrow(message);
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
