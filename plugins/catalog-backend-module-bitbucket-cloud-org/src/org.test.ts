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

const LISTINGS: WorkspaceMembers[] = [
  { workspace: ACME, members: [JANE, BOB], skipped: [] },
  { workspace: PLATFORM, members: [JANE], skipped: [] },
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

  it("sets each entity's location to its page on Bitbucket", async () => {
    const { users, groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: DEFAULTS,
      ctx,
      baseUrl: BASE,
    });
    expect(groups[0].metadata.annotations).toMatchObject({
      'backstage.io/managed-by-location': 'url:https://bitbucket.org/acme/',
      'backstage.io/managed-by-origin-location':
        'url:https://bitbucket.org/acme/',
    });
    expect(users[0].metadata.annotations).toMatchObject({
      'backstage.io/managed-by-location':
        'url:https://bitbucket.org/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/',
      'backstage.io/managed-by-origin-location':
        'url:https://bitbucket.org/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/',
    });
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

  it('keeps location annotations a transformer set', async () => {
    const { groups } = await buildOrgEntities({
      listings: LISTINGS,
      transformers: {
        ...DEFAULTS,
        group: async (workspace, c) => {
          const group = await defaultBitbucketCloudGroupTransformer(
            workspace,
            c,
          );
          group!.metadata.annotations![
            'backstage.io/managed-by-location'
          ] = `url:https://wiki.example/${workspace.slug}`;
          return group;
        },
      },
      ctx,
      baseUrl: BASE,
    });
    expect(
      groups[0].metadata.annotations!['backstage.io/managed-by-location'],
    ).toBe('url:https://wiki.example/acme');
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
