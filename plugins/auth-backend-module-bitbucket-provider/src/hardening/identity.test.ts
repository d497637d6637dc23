/*
 * Never the wrong identity: unconfirmed emails never match, a uuid in any
 * braces and case maps to one single user, a changed username takes over
 * nobody's entity, and users who are not in the catalog get no identity
 * unless the `dangerously…` option is set. Each property end to end against
 * the emulator, and the generated ones at the resolver level.
 */
import { SeedUser } from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import fc from 'fast-check';
import { bitbucketSignInResolvers as resolvers } from '../resolvers';
import {
  createResolverContext,
  signInInfo,
  user,
} from '../__testUtils__/resolverContext';
import {
  catalogUser,
  HardeningWorld,
  startHardeningWorld,
} from './__testUtils__/world';

const JANE: SeedUser = {
  uuid: '{4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d}',
  accountId: '557058:4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d',
  username: 'jdoe',
  nickname: 'jdoe',
  displayName: 'Jane Doe',
  emails: [{ email: 'jane.doe@example.com', primary: true, confirmed: true }],
};
const BOB: SeedUser = {
  uuid: '{0b0b0b0b-1111-4222-8333-444444444444}',
  accountId: '557058:0b0b0b0b-1111-4222-8333-444444444444',
  username: 'bob',
  nickname: 'bob',
  displayName: 'Bob',
  emails: [{ email: 'bob@example.com', primary: true, confirmed: true }],
};
/** Not in the catalog. */
const MALLORY: SeedUser = {
  uuid: '{6d6d6d6d-1111-4222-8333-444444444444}',
  accountId: '557058:6d6d6d6d-1111-4222-8333-444444444444',
  username: 'mallory',
  nickname: 'mallory',
  displayName: 'Mallory',
  emails: [{ email: 'mallory@example.org', primary: true, confirmed: true }],
};

const bare = (uuid: string) => uuid.replace(/[{}]/g, '');
const jane = (annotations: Record<string, string> = {}) =>
  catalogUser(
    'jane.doe',
    {
      'bitbucket.org/user-id': JANE.uuid,
      'bitbucket.org/username': 'jdoe',
      'bitbucket.org/account-id': JANE.accountId,
      ...annotations,
    },
    { profile: { email: 'jane.doe@example.com' } },
  );
const bob = catalogUser(
  'bob',
  { 'bitbucket.org/user-id': BOB.uuid, 'bitbucket.org/username': 'bob' },
  { profile: { email: 'bob@example.com' } },
);

const ALL_RESOLVERS = [
  'userIdMatchingUserEntityAnnotation',
  'accountIdMatchingUserEntityAnnotation',
  'usernameMatchingUserEntityAnnotation',
  'emailMatchingUserEntityProfileEmail',
  'emailLocalPartMatchingUserEntityName',
];
/** The resolvers by name; the local-part one with the domains it needs. */
const resolversConfig = (...names: string[]): JsonObject => ({
  signIn: {
    resolvers: names.map(resolver =>
      resolver === 'emailLocalPartMatchingUserEntityName'
        ? { resolver, allowedDomains: ['example.com', 'example.org'] }
        : { resolver },
    ),
  },
});

describe('identity safety', () => {
  let world: HardeningWorld | undefined;
  afterEach(async () => {
    await world?.stop();
    world = undefined;
  });
  const identityOf = async (
    uuid: string,
  ): Promise<{ ref?: string; error?: any }> => {
    const { message } = await world!.signIn(uuid, {
      agent: world!.newAgent(),
    });
    return {
      ref: message.response?.backstageIdentity?.identity.userEntityRef,
      error: message.error,
    };
  };

  describe('unconfirmed emails never match', () => {
    it.each([
      [
        'the primary address is unconfirmed',
        [{ email: 'jane.doe@example.com', primary: true, confirmed: false }],
      ],
      [
        'an unconfirmed secondary address',
        [
          { email: 'mallory@example.org', primary: true, confirmed: true },
          { email: 'jane.doe@example.com', primary: false, confirmed: false },
        ],
      ],
      [
        'a confirmed address that is not the primary one',
        [
          { email: 'mallory@example.org', primary: true, confirmed: false },
          { email: 'jane.doe@example.com', primary: false, confirmed: true },
        ],
      ],
    ])('%s: no identity', async (_, emails) => {
      // a User without a uuid annotation: only the primary-and-confirmed
      // rule stands between Mallory and Jane's entity
      world = await startHardeningWorld({
        users: [{ ...MALLORY, emails }],
        entities: [
          catalogUser(
            'jane.doe',
            {},
            { profile: { email: 'jane.doe@example.com' } },
          ),
        ],
        provider: {
          signIn: {
            resolvers: [
              { resolver: 'emailMatchingUserEntityProfileEmail' },
              {
                resolver: 'emailLocalPartMatchingUserEntityName',
                allowedDomains: ['example.com'],
              },
            ],
          },
        },
      });
      const { ref, error } = await identityOf(MALLORY.uuid);
      expect(ref).toBeUndefined();
      expect(error.name).toBe('NotFoundError');
    });

    it('generated email lists: a match only through the primary and confirmed address', async () => {
      const address = fc.constantFrom(
        'jane.doe@example.com',
        'JANE.DOE@EXAMPLE.COM',
        'mallory@example.org',
        'jane.doe@example.org',
      );
      const emails = fc
        .uniqueArray(
          fc.record({
            email: address,
            isPrimary: fc.boolean(),
            isConfirmed: fc.boolean(),
          }),
          { selector: e => e.email, maxLength: 4 },
        )
        // Bitbucket has at most one primary address
        .filter(list => list.filter(e => e.isPrimary).length <= 1);
      await fc.assert(
        fc.asyncProperty(emails, async list => {
          const primaryConfirmed = list.find(
            e => e.isPrimary && e.isConfirmed,
          )?.email;
          for (const name of [
            'emailMatchingUserEntityProfileEmail',
            'emailLocalPartMatchingUserEntityName',
          ] as const) {
            const { ctx, issued } = createResolverContext([
              user(
                'jane.doe',
                {},
                { profile: { email: 'jane.doe@example.com' } },
              ),
            ]);
            const info = signInInfo({
              uuid: MALLORY.uuid,
              email: primaryConfirmed,
              emails: list,
            });
            await resolvers[name]({
              allowedDomains: ['example.com', 'example.org'],
            })(info, ctx).catch(() => undefined);
            const matches =
              name === 'emailMatchingUserEntityProfileEmail'
                ? primaryConfirmed?.toLowerCase() === 'jane.doe@example.com'
                : primaryConfirmed?.split('@')[0].toLowerCase() === 'jane.doe';
            expect(issued.map(c => c.sub)).toEqual(
              matches ? ['user:default/jane.doe'] : [],
            );
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('a uuid in other braces or case maps to the same single user', () => {
    it.each([
      ['braced, lower case', JANE.uuid],
      ['braced, upper case', JANE.uuid.toUpperCase()],
      ['bare, upper case', bare(JANE.uuid).toUpperCase()],
      [
        'bare, mixed case',
        bare(JANE.uuid).replace(/[a-f]/g, (c, i) =>
          i % 2 ? c.toUpperCase() : c,
        ),
      ],
    ])('annotation %s', async (_, annotation) => {
      world = await startHardeningWorld({
        users: [JANE, BOB],
        entities: [jane({ 'bitbucket.org/user-id': annotation }), bob],
      });
      expect((await identityOf(JANE.uuid)).ref).toBe('user:default/jane.doe');
      expect((await identityOf(BOB.uuid)).ref).toBe('user:default/bob');
    });

    it('two entities with the same uuid in different forms: no identity, never one of the two', async () => {
      world = await startHardeningWorld({
        users: [JANE],
        entities: [
          jane(),
          catalogUser('jane-copy', {
            'bitbucket.org/user-id': bare(JANE.uuid).toUpperCase(),
          }),
        ],
      });
      const { ref, error } = await identityOf(JANE.uuid);
      expect(ref).toBeUndefined();
      expect(error.name).toBe('ConflictError');
    });

    it('generated spellings of annotation and profile uuid', async () => {
      const spelling = (uuid: string) =>
        fc
          .tuple(
            fc.mixedCase(fc.constant(bare(uuid))),
            fc.constantFrom('{}', '', '{', '}'),
            fc.constantFrom('', ' '),
          )
          .map(
            ([id, braces, pad]) =>
              `${pad}${braces.includes('{') ? '{' : ''}${id}${
                braces.includes('}') ? '}' : ''
              }${pad}`,
          );
      await fc.assert(
        fc.asyncProperty(
          spelling(JANE.uuid),
          spelling(JANE.uuid),
          fc.option(spelling(JANE.uuid), { nil: undefined }),
          async (annotation, profileUuid, duplicate) => {
            const { ctx, issued } = createResolverContext([
              user('jane', { 'bitbucket.org/user-id': annotation }),
              user('bob', { 'bitbucket.org/user-id': BOB.uuid }),
              ...(duplicate
                ? [user('jane-copy', { 'bitbucket.org/user-id': duplicate })]
                : []),
            ]);
            await resolvers
              .userIdMatchingUserEntityAnnotation()(
                signInInfo({ uuid: profileUuid }),
                ctx,
              )
              .catch(() => undefined);
            // the catalog finds an annotation written braced or bare, in
            // any case; one found entity signs in, two sign in nobody
            const findable = (a?: string) =>
              a !== undefined &&
              a.trim() === a &&
              (/^\{[^{}]*\}$/.test(a) || !/[{}]/.test(a));
            const found = [
              findable(annotation) && 'user:default/jane',
              findable(duplicate) && 'user:default/jane-copy',
            ].filter(Boolean);
            expect(issued.map(c => c.sub)).toEqual(
              found.length === 1 ? found : [],
            );
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('a changed Bitbucket username takes over no one', () => {
    const chain = resolversConfig(
      'userIdMatchingUserEntityAnnotation',
      'usernameMatchingUserEntityAnnotation',
    );

    it("a user renamed to another user's username still signs in as themselves", async () => {
      world = await startHardeningWorld({
        users: [JANE, BOB],
        entities: [jane(), bob],
        provider: chain,
      });
      world.emulator.updateUser(BOB.uuid, { username: 'jdoe' });
      expect((await identityOf(BOB.uuid)).ref).toBe('user:default/bob');
      world.emulator.updateUser(JANE.uuid, { username: 'jane-renamed' });
      expect((await identityOf(JANE.uuid)).ref).toBe('user:default/jane.doe');
    });

    it("an account outside the catalog renamed to a user's username gets no identity", async () => {
      world = await startHardeningWorld({
        users: [JANE, MALLORY],
        entities: [jane(), bob],
        provider: chain,
      });
      world.emulator.updateUser(MALLORY.uuid, { username: 'jdoe' });
      const { ref, error } = await identityOf(MALLORY.uuid);
      expect(ref).toBeUndefined();
      expect(error.name).toBe('NotFoundError');
      expect(error.message).toContain(
        'usernameMatchingUserEntityAnnotation: the matching User belongs to another Bitbucket account (its annotation bitbucket.org/user-id names another account)',
      );
    });

    it('not even with the dangerous option', async () => {
      world = await startHardeningWorld({
        users: [JANE, MALLORY],
        entities: [jane(), bob],
        provider: {
          signIn: {
            resolvers: [
              { resolver: 'userIdMatchingUserEntityAnnotation' },
              {
                resolver: 'usernameMatchingUserEntityAnnotation',
                dangerouslyAllowSignInWithoutUserInCatalog: true,
              },
            ],
          },
        },
      });
      world.emulator.updateUser(MALLORY.uuid, { username: 'jdoe' });
      expect((await identityOf(MALLORY.uuid)).ref).toBeUndefined();
      // the fallback identity comes from the account's uuid alone: a
      // username that is a catalog User's entity name changes nothing
      world.emulator.updateUser(MALLORY.uuid, { username: 'jane.doe' });
      expect((await identityOf(MALLORY.uuid)).ref).toBe(
        `user:default/${bare(MALLORY.uuid)}`,
      );
      world.emulator.updateUser(MALLORY.uuid, { username: 'mallory' });
      expect((await identityOf(MALLORY.uuid)).ref).toBe(
        `user:default/${bare(MALLORY.uuid)}`,
      );
    });
  });

  describe('users who are not in the catalog', () => {
    it.each(ALL_RESOLVERS)('%s: no identity', async name => {
      world = await startHardeningWorld({
        users: [JANE, MALLORY],
        entities: [jane()],
        provider: resolversConfig(name),
      });
      const { ref, error } = await identityOf(MALLORY.uuid);
      expect(ref).toBeUndefined();
      expect(error.name).toBe('NotFoundError');
      expect(error.message).toMatch(
        /^Signed in to Bitbucket as Mallory \(\{6d6d6d6d-1111-4222-8333-444444444444\}\), but no matching User was found in the Backstage catalog\./,
      );
      expect(world.refreshToken()).toBeUndefined();
    });

    it.each(ALL_RESOLVERS)(
      '%s with dangerouslyAllowSignInWithoutUserInCatalog: an identity of its own, without groups',
      async name => {
        // one name per account, from its uuid alone, whichever resolver
        const entityName = bare(MALLORY.uuid);
        world = await startHardeningWorld({
          users: [JANE, MALLORY],
          entities: [jane()],
          provider: {
            signIn: {
              resolvers: [
                {
                  ...(resolversConfig(name).signIn as any).resolvers[0],
                  dangerouslyAllowSignInWithoutUserInCatalog: true,
                },
              ],
            },
          },
        });
        const { message } = await world.signIn(MALLORY.uuid);
        expect(message.response.backstageIdentity.identity).toEqual({
          type: 'user',
          userEntityRef: `user:default/${entityName}`,
          ownershipEntityRefs: [`user:default/${entityName}`],
        });
        expect((await identityOf(JANE.uuid)).ref).toBe('user:default/jane.doe');
      },
    );
  });
});
