import { mockServices } from '@backstage/backend-test-utils';
import type { WorkspaceMembers } from './client';
import { buildOrgEntities, OrgTransformers } from './org';
import {
  defaultBitbucketCloudGroupTransformer,
  defaultBitbucketCloudUserTransformer,
} from './transformers';

const ctx = { providerId: 'test', logger: mockServices.logger.mock() };
const BASE = 'https://bitbucket.org';
const DEFAULTS: OrgTransformers = {
  user: defaultBitbucketCloudUserTransformer,
  group: defaultBitbucketCloudGroupTransformer,
};

const ACME = { uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', slug: 'acme' };
const PLATFORM = {
  uuid: '{5c9d2e7b-1f4a-4c63-9e08-b3a6d1f7c245}',
  slug: 'platform',
};
const JANE = { uuid: '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}' };
const BOB = { uuid: '{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}' };

const LISTED_AT = '2026-12-04T15:00:00.000Z';
const LISTINGS: WorkspaceMembers[] = [
  {
    workspace: ACME,
    members: [JANE, BOB],
    listedAt: LISTED_AT,
    collaborators: 0,
  },
  {
    workspace: PLATFORM,
    members: [JANE],
    listedAt: LISTED_AT,
    collaborators: 0,
  },
];

describe('buildOrgEntities', () => {
  it('makes one Group per workspace and one User per account, memberOf its workspaces', async () => {
    const { users, groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: DEFAULTS,
      ctx,
      baseUrl: BASE,
    });
    expect(groups.map(g => g.metadata.name)).toEqual(['acme', 'platform']);
    expect(users.map(u => [u.metadata.name, u.spec.memberOf])).toEqual([
      ['3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15', ['acme', 'platform']],
      ['8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48', ['acme']],
    ]);
  });

  it("sets each entity's location to the provenance bitbucket-cloud-org:<providerId>, its view URL to its page on Bitbucket", async () => {
    const { users, groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: DEFAULTS,
      ctx,
      baseUrl: BASE,
    });
    expect(groups[0].metadata.annotations).toEqual({
      'backstage.io/managed-by-location': 'bitbucket-cloud-org:test',
      'backstage.io/managed-by-origin-location': 'bitbucket-cloud-org:test',
      'backstage.io/view-url': 'https://bitbucket.org/acme/',
      'bitbucket.org/workspace-slug': 'acme',
      'bitbucket.org/workspace-uuid': '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
      'bitbucket.org/members-listed-at': LISTED_AT,
      'bitbucket.org/member-uuids':
        '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15},{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}',
    });
    expect(users[0].metadata.annotations).toMatchObject({
      'backstage.io/managed-by-location': 'bitbucket-cloud-org:test',
      'backstage.io/managed-by-origin-location': 'bitbucket-cloud-org:test',
      'backstage.io/view-url':
        'https://bitbucket.org/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/',
    });
  });

  it('writes member-uuids braced, lower-case, sorted, comma-joined, and keeps accounts claimed by other sources in it without a User', async () => {
    const { users, groups, leftToOthers } = await buildOrgEntities({
      listings: [
        {
          workspace: ACME,
          members: [{ uuid: '{8A4E6C21-9D3B-47F0-B512-6E9C0A7D3F48}' }, JANE],
          listedAt: LISTED_AT,
          collaborators: 0,
        },
      ],
      transformers: DEFAULTS,
      ctx,
      baseUrl: BASE,
      claimed: new Map([
        ['{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}', 'user:default/bob'],
      ]),
    });
    expect(groups[0].metadata.annotations!['bitbucket.org/member-uuids']).toBe(
      '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15},{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}',
    );
    expect(users.map(u => u.metadata.name)).toEqual([
      '3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
    ]);
    expect(leftToOthers).toEqual([
      {
        uuid: '{8A4E6C21-9D3B-47F0-B512-6E9C0A7D3F48}',
        ref: 'user:default/bob',
      },
    ]);
  });

  it('gives a Group its pinned name, and its members memberOf that name', async () => {
    const { users, groups } = await buildOrgEntities({
      listings: [
        {
          workspace: { ...ACME, slug: 'platform-admins' },
          members: [JANE],
          listedAt: LISTED_AT,
          collaborators: 0,
        },
      ],
      transformers: DEFAULTS,
      ctx,
      baseUrl: BASE,
      groupNames: new Map([[ACME.uuid, { name: 'acme' }]]),
    });
    expect(groups.map(g => g.metadata.name)).toEqual(['acme']);
    expect(
      groups[0].metadata.annotations!['bitbucket.org/workspace-slug'],
    ).toBe('platform-admins');
    expect(users[0].spec.memberOf).toEqual(['acme']);
  });

  it('tells the user transformer every configured workspace of the account, once each', async () => {
    const seen: string[][] = [];
    await buildOrgEntities({
      listings: [...LISTINGS, LISTINGS[0]],
      transformers: {
        ...DEFAULTS,
        user: async (member, c) => {
          seen.push(member.workspaces.map(w => w.slug));
          return defaultBitbucketCloudUserTransformer(member, c);
        },
      },
      ctx,
      baseUrl: BASE,
    });
    expect(seen).toEqual([['acme', 'platform'], ['acme']]);
  });

  it('links users to renamed groups, across namespaces, keeping their own memberOf', async () => {
    const { users } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: {
        group: async (workspace, c) => {
          const group = await defaultBitbucketCloudGroupTransformer(
            workspace,
            c,
          );
          group!.metadata.name = `bitbucket-${workspace.slug}`;
          if (workspace.slug === 'platform') group!.metadata.namespace = 'eng';
          return group;
        },
        user: async (member, c) => {
          const user = await defaultBitbucketCloudUserTransformer(member, c);
          user!.spec.memberOf = ['everyone'];
          return user;
        },
      },
      ctx,
      baseUrl: BASE,
    });
    expect(users[0].spec.memberOf).toEqual([
      'everyone',
      'bitbucket-acme',
      'eng/bitbucket-platform',
    ]);
  });

  it('leaves out what a transformer returns undefined for, and links no one to a skipped group', async () => {
    const { users, groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: {
        group: async (workspace, c) =>
          workspace.slug === 'platform'
            ? undefined
            : defaultBitbucketCloudGroupTransformer(workspace, c),
        user: async (member, c) =>
          member.uuid === BOB.uuid
            ? undefined
            : defaultBitbucketCloudUserTransformer(member, c),
      },
      ctx,
      baseUrl: BASE,
    });
    expect(groups.map(g => g.metadata.name)).toEqual(['acme']);
    expect(users.map(u => [u.metadata.name, u.spec.memberOf])).toEqual([
      ['3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15', ['acme']],
    ]);
  });

  it('keeps the view URL a transformer set, never its location annotations', async () => {
    const { groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: {
        ...DEFAULTS,
        group: async (workspace, c) => {
          const group = await defaultBitbucketCloudGroupTransformer(
            workspace,
            c,
          );
          Object.assign(group!.metadata.annotations!, {
            'backstage.io/managed-by-location': `url:https://wiki.example/${workspace.slug}`,
            'backstage.io/managed-by-origin-location': `url:https://wiki.example/${workspace.slug}`,
            'backstage.io/view-url': `https://wiki.example/${workspace.slug}`,
          });
          return group;
        },
      },
      ctx,
      baseUrl: BASE,
    });
    expect(groups[0].metadata.annotations).toMatchObject({
      'backstage.io/managed-by-location': 'bitbucket-cloud-org:test',
      'backstage.io/managed-by-origin-location': 'bitbucket-cloud-org:test',
      'backstage.io/view-url': 'https://wiki.example/acme',
    });
  });

  it('names the transformer and the account when a transformer throws', async () => {
    await expect(
      buildOrgEntities({
        listings: LISTINGS,
        transformers: {
          ...DEFAULTS,
          user: async () => {
            throw new Error('directory lookup failed');
          },
        },
        ctx,
        baseUrl: BASE,
      }),
    ).rejects.toThrow(
      'the user transformer failed for account {3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}: directory lookup failed',
    );
  });

  it('refuses two entities with one ref', async () => {
    await expect(
      buildOrgEntities({
        listings: LISTINGS,
        transformers: {
          ...DEFAULTS,
          user: async (member, c) => {
            const user = await defaultBitbucketCloudUserTransformer(member, c);
            user!.metadata.name = 'same';
            return user;
          },
        },
        ctx,
        baseUrl: BASE,
      }),
    ).rejects.toThrow(
      'two imported entities are both user:default/same; a custom transformer must give each account and workspace its own name',
    );
  });
});
