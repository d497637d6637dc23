import {
  bitbucketSignInResolvers as resolvers,
  fallbackEntityName,
} from './resolvers';
import {
  createResolverContext,
  signInInfo,
  user,
} from './__testUtils__/resolverContext';

const UUID = '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}';
const BARE = '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01';

describe('userIdMatchingUserEntityAnnotation', () => {
  const resolve = resolvers.userIdMatchingUserEntityAnnotation();

  it.each([
    ['braced, same case', UUID, UUID],
    ['unbraced annotation', BARE, UUID],
    ['upper-case annotation', UUID.toUpperCase(), UUID],
    ['profile uuid upper-case and unbraced', UUID, BARE.toUpperCase()],
  ])('matches %s', async (_, annotation, profileUuid) => {
    const { ctx, issued } = createResolverContext([
      user(
        'jane',
        { 'bitbucket.org/user-id': annotation },
        { memberOf: ['team-a'] },
      ),
      user('other', {
        'bitbucket.org/user-id': '{11111111-2222-3333-4444-555555555555}',
      }),
    ]);
    await expect(
      resolve(signInInfo({ uuid: profileUuid }), ctx),
    ).resolves.toEqual({
      token: 'token-for-user:default/jane',
    });
    expect(issued).toEqual([
      {
        sub: 'user:default/jane',
        ent: ['user:default/jane', 'group:default/team-a'],
      },
    ]);
  });

  it('refuses when no user has the uuid', async () => {
    const { ctx, issued } = createResolverContext([user('jane')]);
    await expect(resolve(signInInfo(), ctx)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: `no User has the annotation bitbucket.org/user-id: '${UUID}'`,
    });
    expect(issued).toEqual([]);
  });

  it('refuses an ambiguous uuid instead of picking one', async () => {
    const { ctx, issued } = createResolverContext([
      user('jane', { 'bitbucket.org/user-id': UUID }),
      user('jane-copy', { 'bitbucket.org/user-id': BARE.toUpperCase() }),
    ]);
    await expect(resolve(signInInfo(), ctx)).rejects.toMatchObject({
      name: 'ConflictError',
      message: `More than one catalog User has the annotation bitbucket.org/user-id: '${UUID}'; make it unique so that sign-in is unambiguous.`,
    });
    expect(issued).toEqual([]);
  });

  it('checks the match exactly after the catalog query', async () => {
    const { ctx, issued } = createResolverContext([]);
    ctx.findCatalogUser = async () => ({
      entity: user('mallory', {
        'bitbucket.org/user-id': '{ffffffff-0000-0000-0000-000000000000}',
      }),
    });
    await expect(resolve(signInInfo(), ctx)).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    expect(issued).toEqual([]);
  });

  it('falls back to a valid entity name only when dangerously allowed', async () => {
    const { ctx, issued } = createResolverContext([]);
    const dangerous = resolvers.userIdMatchingUserEntityAnnotation({
      dangerouslyAllowSignInWithoutUserInCatalog: true,
    });
    await dangerous(signInInfo(), ctx);
    expect(issued).toEqual([
      { sub: `user:default/${BARE}`, ent: [`user:default/${BARE}`] },
    ]);
  });

  it('rejects unknown options', () => {
    expect(() =>
      resolvers.userIdMatchingUserEntityAnnotation({
        allowedDomains: [],
      } as any),
    ).toThrow(/Invalid sign-in resolver options/);
  });
});

describe('usernameMatchingUserEntityAnnotation', () => {
  const resolve = resolvers.usernameMatchingUserEntityAnnotation();

  it('matches the username annotation', async () => {
    const { ctx, issued } = createResolverContext([
      user('jane', { 'bitbucket.org/username': 'jdoe' }),
    ]);
    await resolve(signInInfo(), ctx);
    expect(issued).toEqual([
      { sub: 'user:default/jane', ent: ['user:default/jane'] },
    ]);
  });

  it('explains that the account has no username', async () => {
    const { ctx } = createResolverContext([
      user('jane', { 'bitbucket.org/username': 'jdoe' }),
    ]);
    await expect(
      resolve(signInInfo({ username: undefined }), ctx),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
      message:
        'Bitbucket returned no username for this account (usernames are deprecated since 2019); use userIdMatchingUserEntityAnnotation or accountIdMatchingUserEntityAnnotation',
    });
  });

  it('does not match another case of the username', async () => {
    const { ctx } = createResolverContext([
      user('jane', { 'bitbucket.org/username': 'JDoe' }),
    ]);
    await expect(resolve(signInInfo(), ctx)).rejects.toMatchObject({
      name: 'NotFoundError',
    });
  });
});

describe('accountIdMatchingUserEntityAnnotation', () => {
  it('matches the account id annotation, falls back to the uuid', async () => {
    const { ctx, issued } = createResolverContext([
      user('jane', {
        'bitbucket.org/account-id':
          '557058:0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
      }),
    ]);
    await resolvers.accountIdMatchingUserEntityAnnotation()(signInInfo(), ctx);
    await resolvers.accountIdMatchingUserEntityAnnotation({
      dangerouslyAllowSignInWithoutUserInCatalog: true,
    })(signInInfo({ accountId: '5c65cab48bcc9e016aeece31' }), ctx);
    expect(issued.map(c => c.sub)).toEqual([
      'user:default/jane',
      'user:default/0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
    ]);
  });
});

describe('emailMatchingUserEntityProfileEmail', () => {
  const catalog = () =>
    createResolverContext([
      user('jane', {}, { profile: { email: 'Jane.Doe@Example.com' } }),
    ]);

  it('matches the primary confirmed email, case-insensitively', async () => {
    const { ctx, issued } = catalog();
    await resolvers.emailMatchingUserEntityProfileEmail()(signInInfo(), ctx);
    expect(issued.map(c => c.sub)).toEqual(['user:default/jane']);
  });

  it('never uses an unconfirmed address', async () => {
    const { ctx, issued } = catalog();
    const info = signInInfo({
      email: undefined,
      emails: [
        { email: 'jane.doe@example.com', isPrimary: true, isConfirmed: false },
      ],
    });
    await expect(
      resolvers.emailMatchingUserEntityProfileEmail()(info, ctx),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
      message:
        'the Bitbucket account has no confirmed primary email address (none of its addresses is both primary and confirmed); confirm the address and make it primary at https://bitbucket.org/account/settings/email/',
    });
    expect(issued).toEqual([]);
  });

  it('applies allowedDomains', async () => {
    const { ctx, issued } = catalog();
    await expect(
      resolvers.emailMatchingUserEntityProfileEmail({
        allowedDomains: ['acme.com', 'acme.io'],
      })(signInInfo(), ctx),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
      // the allow-list itself is for the audit line, not for the user
      message:
        "the email domain 'example.com' is not one of allowedDomains; sign in with an account whose primary email is at your organisation's domain",
    });
    await resolvers.emailMatchingUserEntityProfileEmail({
      allowedDomains: ['EXAMPLE.com'],
    })(signInInfo(), ctx);
    expect(issued.map(c => c.sub)).toEqual(['user:default/jane']);
  });

  it('falls back to the uuid as entity name when dangerously allowed', async () => {
    const { ctx, issued } = createResolverContext([]);
    await resolvers.emailMatchingUserEntityProfileEmail({
      dangerouslyAllowSignInWithoutUserInCatalog: true,
    })(signInInfo(), ctx);
    expect(issued.map(c => c.sub)).toEqual([
      'user:default/0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
    ]);
  });

  it('a fallback User of that name bound to this account is used, with its groups', async () => {
    const { ctx, issued } = createResolverContext([
      user(
        '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
        { 'bitbucket.org/user-id': '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}' },
        { memberOf: ['acme'] },
      ),
    ]);
    await resolvers.emailMatchingUserEntityProfileEmail({
      dangerouslyAllowSignInWithoutUserInCatalog: true,
    })(signInInfo(), ctx);
    expect(issued).toEqual([
      {
        sub: 'user:default/0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
        ent: [
          'user:default/0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
          'group:default/acme',
        ],
      },
    ]);
  });
});

describe('emailLocalPartMatchingUserEntityName', () => {
  it('matches the entity name to the local part', async () => {
    const { ctx, issued } = createResolverContext([user('jane.doe')]);
    await resolvers.emailLocalPartMatchingUserEntityName({
      allowedDomains: ['example.com'],
    })(signInInfo(), ctx);
    expect(issued.map(c => c.sub)).toEqual(['user:default/jane.doe']);
  });

  it('needs allowedDomains', () => {
    expect(() => resolvers.emailLocalPartMatchingUserEntityName()).toThrow(
      'emailLocalPartMatchingUserEntityName needs allowedDomains',
    );
    expect(() =>
      resolvers.emailLocalPartMatchingUserEntityName({ allowedDomains: [] }),
    ).toThrow('emailLocalPartMatchingUserEntityName needs allowedDomains');
  });

  it('names the entity it looked for', async () => {
    const { ctx } = createResolverContext([user('jane')]);
    await expect(
      resolvers.emailLocalPartMatchingUserEntityName({
        allowedDomains: ['example.com'],
      })(signInInfo(), ctx),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
      message:
        "no User is named 'jane.doe' (the local part of jane.doe@example.com)",
    });
  });
});

describe('fallbackEntityName', () => {
  it.each([
    [
      '{0B0C5E1E-9F1D-4C2A-8A55-2F1A1B7E3C01}',
      '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
    ],
    [
      '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
      '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
    ],
  ])('%s → %s (a valid entity name of 36 characters)', (uuid, name) => {
    expect(fallbackEntityName(uuid)).toBe(name);
    expect(name).toMatch(/^([a-z0-9]+[-_.])*[a-z0-9]+$/);
  });
});
