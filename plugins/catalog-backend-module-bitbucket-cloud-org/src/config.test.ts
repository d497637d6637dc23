import { ConfigReader } from '@backstage/config';
import { JsonValue } from '@backstage/types';
import { DEFAULT_SCHEDULE, readProviderSettings } from './config';

const SECRET = 'consumer-secret-Xy7';

function read(providers: JsonValue, integrations?: JsonValue) {
  return readProviderSettings(
    new ConfigReader({
      catalog: { providers: { bitbucketCloudOrg: providers } },
      ...(integrations ? { integrations } : {}),
    }),
  );
}

function readOne(block: JsonValue, integrations?: JsonValue) {
  return read({ production: block }, integrations)[0];
}

const MINIMAL = {
  workspaces: ['acme'],
  clientId: 'consumer-key',
  clientSecret: SECRET,
};

describe('readProviderSettings', () => {
  it('configures nothing without a catalog.providers.bitbucketCloudOrg block', () => {
    expect(readProviderSettings(new ConfigReader({}))).toEqual([]);
    expect(
      readProviderSettings(
        new ConfigReader({ catalog: { providers: { github: {} } } }),
      ),
    ).toEqual([]);
  });

  it('reads one provider per id, with the defaults', () => {
    expect(read({ production: MINIMAL, staging: MINIMAL })).toEqual([
      {
        id: 'production',
        path: 'catalog.providers.bitbucketCloudOrg.production',
        workspaces: ['acme'],
        clientId: 'consumer-key',
        clientSecret: SECRET,
        credentialsPath: 'catalog.providers.bitbucketCloudOrg.production',
        baseUrl: 'https://bitbucket.org',
        tokenUrl: 'https://bitbucket.org/site/oauth2/access_token',
        apiBaseUrl: 'https://api.bitbucket.org/2.0',
        requestTimeoutMs: 10000,
        schedule: DEFAULT_SCHEDULE,
        groups: {},
        memberDrop: { maxShare: 0.1, minCount: 2 },
      },
      expect.objectContaining({ id: 'staging' }),
    ]);
  });

  it('reads every key', () => {
    const settings = readOne({
      ...MINIMAL,
      workspaces: ['Acme', '{0E6A3D1F-8C52-4B97-A4E0-7F2B9C5D1E83}', 'acme'],
      baseUrl: 'http://localhost:7100/',
      apiBaseUrl: 'http://127.0.0.1:7100/2.0/',
      requestTimeout: 2500,
      schedule: { frequency: { minutes: 5 }, timeout: { seconds: 30 } },
    });
    expect(settings).toMatchObject({
      workspaces: ['acme', '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}'],
      baseUrl: 'http://localhost:7100',
      tokenUrl: 'http://localhost:7100/site/oauth2/access_token',
      apiBaseUrl: 'http://127.0.0.1:7100/2.0',
      requestTimeoutMs: 2500,
      schedule: { frequency: { minutes: 5 }, timeout: { seconds: 30 } },
    });
  });

  describe('credentials', () => {
    const INTEGRATION = {
      bitbucketCloud: [
        { username: 'jdoe', token: 'personal-api-token' },
        { clientId: 'integration-key', clientSecret: 'integration-secret' },
      ],
    };

    it("prefers the provider's own clientId and clientSecret", () => {
      expect(readOne(MINIMAL, INTEGRATION)).toMatchObject({
        clientId: 'consumer-key',
        credentialsPath: 'catalog.providers.bitbucketCloudOrg.production',
      });
    });

    it('falls back to the first OAuth consumer of integrations.bitbucketCloud', () => {
      expect(readOne({ workspaces: ['acme'] }, INTEGRATION)).toMatchObject({
        clientId: 'integration-key',
        clientSecret: 'integration-secret',
        credentialsPath: 'integrations.bitbucketCloud[1]',
      });
    });

    it('refuses half a pair instead of mixing sources', () => {
      expect(() =>
        readOne({ workspaces: ['acme'], clientId: 'k' }, INTEGRATION),
      ).toThrow(
        "Missing required config value at 'catalog.providers.bitbucketCloudOrg.production.clientSecret': set both clientId and clientSecret (the Key and Secret of the OAuth consumer), or neither to use the consumer of integrations.bitbucketCloud.",
      );
    });

    it('refuses a person’s token as the only credential', () => {
      expect(() =>
        readOne(
          { workspaces: ['acme'] },
          { bitbucketCloud: [INTEGRATION.bitbucketCloud[0]] },
        ),
      ).toThrow(
        "Missing required config value at 'catalog.providers.bitbucketCloudOrg.production.clientId': set clientId and clientSecret to the Key and Secret of a Bitbucket OAuth consumer with the permission \"Workspace membership: Read\" (or set them in integrations.bitbucketCloud). A token or app password of integrations.bitbucketCloud is a person's credential, which this provider does not use.",
      );
    });

    it('names a broken integrations.bitbucketCloud', () => {
      expect(() =>
        readOne(
          { workspaces: ['acme'] },
          { bitbucketCloud: [{ clientId: 'k' }] },
        ),
      ).toThrow(
        "Invalid config at 'integrations.bitbucketCloud', read because 'catalog.providers.bitbucketCloudOrg.production' has no clientId and clientSecret: Bitbucket Cloud integration has incomplete OAuth configuration. Both clientId and clientSecret are required.",
      );
    });

    it('refuses whitespace in a secret without echoing it', () => {
      let message = '';
      try {
        readOne({ ...MINIMAL, clientSecret: `${SECRET}\n` });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toBe(
        "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.clientSecret': it contains whitespace (often a trailing space or newline from copy-paste). Remove it; consumer keys and secrets never contain any.",
      );
      expect(message).not.toContain(SECRET);
    });
  });

  it.each([
    [
      { clientId: 'k', clientSecret: 's' },
      "Missing required config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces': list the workspaces whose members to import, by slug (the part after bitbucket.org/ in the workspace's URL) or by '{uuid}', e.g. [acme] or [{ workspace: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', group: acme }].",
    ],
    [
      { ...MINIMAL, workspaces: [] },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces': list the workspaces",
    ],
    [
      { ...MINIMAL, workspaces: ['acme', 'https://bitbucket.org/acme'] },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces[1]': expected a workspace slug such as 'acme' or a uuid such as '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', got \"https://bitbucket.org/acme\".",
    ],
    [
      { ...MINIMAL, workspaces: ['0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83'] },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces[0]': a workspace uuid is written with braces, '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}'.",
    ],
    [
      { ...MINIMAL, workspace: ['acme'] },
      "Unknown config key 'catalog.providers.bitbucketCloudOrg.production.workspace'. A Bitbucket Cloud org provider reads only: workspaces, clientId, clientSecret, baseUrl, apiBaseUrl, requestTimeout, schedule, memberDrop. Fix or remove the key so that no setting is silently ignored.",
    ],
    [
      { ...MINIMAL, apiBaseUrl: 'http://bitbucket.internal/2.0' },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.apiBaseUrl': plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https for 'bitbucket.internal'.",
    ],
    [
      { ...MINIMAL, baseUrl: 'bitbucket.org' },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.baseUrl': expected an absolute https URL such as 'https://bitbucket.org', got 'bitbucket.org'.",
    ],
    [
      { ...MINIMAL, apiBaseUrl: 'https://api.bitbucket.org/2.0?x=1' },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.apiBaseUrl': remove the query or fragment from 'https://api.bitbucket.org/2.0?x=1'.",
    ],
    [
      { ...MINIMAL, requestTimeout: '10s' },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.requestTimeout': expected a positive number of milliseconds, e.g. 10000.",
    ],
    [
      { ...MINIMAL, schedule: { frequency: 'often' } },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.schedule':",
    ],
  ])('names the key at fault (%#)', (block, message) => {
    expect(() => readOne(block)).toThrow(message);
  });

  it('reads workspaces by uuid with a pinned group name, and memberDrop', () => {
    const settings = readOne({
      ...MINIMAL,
      workspaces: [
        { workspace: '{0E6A3D1F-8C52-4B97-A4E0-7F2B9C5D1E83}', group: 'acme' },
        { workspace: 'platform' },
        'partners',
      ],
      memberDrop: { maxShare: 0.25, minCount: 5 },
    });
    expect(settings.workspaces).toEqual([
      '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
      'platform',
      'partners',
    ]);
    expect(settings.groups).toEqual({
      '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}': 'acme',
    });
    expect(settings.memberDrop).toEqual({ maxShare: 0.25, minCount: 5 });
  });

  it.each([
    [
      { workspaces: [{ workspace: 'acme', group: 'Not A Name!' }] },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces[0].group': expected the name of the workspace's Group, a valid entity name such as 'acme' (letters, digits, '-', '_', '.'; at most 63), got \"Not A Name!\".",
    ],
    [
      { workspaces: [{ slug: 'acme' }] },
      "Unknown config key 'catalog.providers.bitbucketCloudOrg.production.workspaces[0].slug': a workspace entry is a slug, a '{uuid}', or { workspace, group }",
    ],
    [
      { workspaces: [{ group: 'acme' }] },
      "Missing required config value at 'catalog.providers.bitbucketCloudOrg.production.workspaces[0].workspace'",
    ],
    [
      { memberDrop: { maxShare: 10 } },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.memberDrop.maxShare': expected a share from 0 to 1 of the last applied listing's members (0.1 is 10 %; 1 accepts any drop), got 10.",
    ],
    [
      { memberDrop: { minCount: 0 } },
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production.memberDrop.minCount': expected a whole number of members >= 1, got 0.",
    ],
    [
      { memberDrop: { share: 0.2 } },
      "Unknown config key 'catalog.providers.bitbucketCloudOrg.production.memberDrop.share': memberDrop reads only maxShare and minCount.",
    ],
  ])('refuses a bad workspace entry or memberDrop (%#)', (block, message) => {
    expect(() => readOne({ ...MINIMAL, ...block })).toThrow(message);
  });

  it('refuses a list (the GitHub org shape) and a provider that is no block', () => {
    expect(() => read([MINIMAL])).toThrow(
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg': expected one block per provider id, e.g. 'catalog.providers.bitbucketCloudOrg.production: { workspaces: [acme], clientId: …, clientSecret: … }'.",
    );
    expect(() => read({ production: 'acme' })).toThrow(
      "Invalid config value at 'catalog.providers.bitbucketCloudOrg.production': expected a block with at least 'workspaces'.",
    );
  });
});
