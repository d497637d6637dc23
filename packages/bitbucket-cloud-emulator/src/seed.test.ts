import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoSeedPath, loadSeed, validateSeed, workspaceUuid } from './seed';
import { DEMO_USERS } from './test-helpers';

const MINIMAL = `
consumers:
  - key: k
    secret: s
    callbackUrl: http://localhost:3000/cb
    permissions: [account]
users:
  - uuid: '{11111111-2222-4333-8444-555555555555}'
    accountId: '557058:abc'
    nickname: n
    displayName: N
    emails: [{ email: n@example.com, primary: true, confirmed: true }]
`;

describe('loadSeed', () => {
  it('loads the demo seed with its five users and one consumer', () => {
    const seed = loadSeed(demoSeedPath);
    expect(seed.consumers).toEqual([
      {
        key: 'backstage-demo',
        secret: 'backstage-demo-secret',
        callbackUrl: 'http://localhost:7007/api/auth/bitbucket',
        permissions: [
          'account',
          'email',
          'team',
          'project',
          'pullrequest',
          'pullrequest:write',
          'snippet',
          'snippet:write',
          'issue',
          'issue:write',
        ],
        workspaces: ['acme', 'platform'],
      },
    ]);
    expect(seed.users.map(u => u.uuid)).toEqual(Object.values(DEMO_USERS));
    expect(seed.users.map(u => u.displayName)).toEqual([
      'Jane Doe',
      'Bob Builder',
      'Carol Contractor',
      'Mallory Unconfirmed',
      'Eve Emailless',
    ]);
    const bob = seed.users[1];
    expect(bob.username).toBeUndefined();
    const mallory = seed.users[3];
    expect(mallory.emails).toEqual([
      { email: 'jane.doe@example.com', primary: true, confirmed: false },
    ]);
  });

  it('leaves out the workspaces of a consumer that lists none', () => {
    expect(loadSeed(MINIMAL).consumers[0]).toEqual({
      key: 'k',
      secret: 's',
      callbackUrl: 'http://localhost:3000/cb',
      permissions: ['account'],
    });
  });

  it('reads YAML text and files', () => {
    expect(loadSeed(MINIMAL).users[0].nickname).toBe('n');
    const dir = mkdtempSync(join(tmpdir(), 'bbemu-'));
    try {
      const file = join(dir, 'seed.yaml');
      writeFileSync(file, MINIMAL);
      expect(loadSeed(file).consumers[0].key).toBe('k');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing file', () => {
    expect(() => loadSeed('/nonexistent/seed.yaml')).toThrow(
      'Emulator seed file not found: /nonexistent/seed.yaml',
    );
  });

  it.each([
    [
      MINIMAL.replace(
        "'{11111111-2222-4333-8444-555555555555}'",
        '11111111-2222-4333-8444-555555555555',
      ),
      'users[0].uuid must be a UUID in curly braces',
    ],
    [
      MINIMAL.replace('callbackUrl', 'callbackURL'),
      'consumers[0].callbackURL is not a known field',
    ],
    [
      MINIMAL.replace('[account]', '[account, read:user:bitbucket]'),
      'consumers[0].permissions[1] is not a Bitbucket Cloud OAuth scope',
    ],
    [
      MINIMAL.replace('n@example.com', 'not-an-email'),
      'users[0].emails[0].email must be an email address',
    ],
    [
      MINIMAL.replace('confirmed: true', 'confirmed: yes please'),
      'users[0].emails[0].confirmed must be true or false',
    ],
    [
      MINIMAL.replace("accountId: '557058:abc'", ''),
      'users[0].accountId must be a non-empty string, got nothing',
    ],
    [
      MINIMAL.replace('http://localhost:3000/cb', 'localhost/cb'),
      'consumers[0].callbackUrl must be an absolute http(s) URL',
    ],
    [
      `${MINIMAL}    workspaces: [{ slug: acme, role: admin }]\n`,
      'users[0].workspaces[0].role must be one of owner, collaborator, member, got "admin"',
    ],
    [
      MINIMAL.replace('[account]', '[account]\n    workspaces: [ACME Corp]'),
      'consumers[0].workspaces[0] must be a workspace slug (lower-case letters, digits, "-", "_" or "."), got "ACME Corp"',
    ],
    [
      MINIMAL.replace('[account]', '[account]\n    workspaces: acme'),
      'consumers[0].workspaces must be a list, got "acme"',
    ],
    ['consumers: []\nusers: {}\n', 'users must be a list, got object'],
    ['consumers: [\n', 'not valid YAML'],
  ])(
    'rejects a bad seed with a message naming the field (%#)',
    (yaml, message) => {
      expect(() => loadSeed(yaml)).toThrow(message);
    },
  );

  it('rejects duplicate users and disagreeing workspace uuids', () => {
    const user = {
      uuid: DEMO_USERS.jane,
      accountId: 'a',
      nickname: 'n',
      displayName: 'N',
      emails: [],
    };
    expect(() =>
      validateSeed({ consumers: [], users: [user, user] }, 'test'),
    ).toThrow(
      `Invalid emulator seed (test): users[1].uuid duplicates the uuid ${DEMO_USERS.jane}`,
    );
    expect(() =>
      validateSeed(
        {
          consumers: [],
          users: [
            { ...user, workspaces: [{ slug: 'w', role: 'member' }] },
            {
              ...user,
              uuid: DEMO_USERS.bob,
              workspaces: [
                {
                  slug: 'w',
                  role: 'member',
                  uuid: '{00000000-0000-4000-8000-000000000000}',
                },
              ],
            },
          ],
        },
        'test',
      ),
    ).toThrow('users[1].workspaces[0].uuid gives workspace "w" the uuid');
  });

  it('derives a stable braced uuid for a workspace without one', () => {
    const derived = workspaceUuid({ slug: 'acme', role: 'owner' });
    expect(derived).toMatch(
      /^\{[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}\}$/,
    );
    expect(workspaceUuid({ slug: 'acme', role: 'member' })).toBe(derived);
  });
});
