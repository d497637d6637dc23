import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { signInResolverFactories } from './provider';
import { readBitbucketSignInResolver } from './signIn';
import {
  createResolverContext,
  signInInfo,
  user,
} from './__testUtils__/resolverContext';

const path = 'auth.providers.bitbucket.development';
const read = (resolvers: JsonObject[]) =>
  readBitbucketSignInResolver(
    new ConfigReader({ signIn: { resolvers } }),
    signInResolverFactories,
    path,
  );

describe('readBitbucketSignInResolver', () => {
  it('is undefined without resolvers', () => {
    expect(
      readBitbucketSignInResolver(
        new ConfigReader({}),
        signInResolverFactories,
        path,
      ),
    ).toBeUndefined();
  });

  it('tries the resolvers in order', async () => {
    const resolve = read([
      { resolver: 'userIdMatchingUserEntityAnnotation' },
      { resolver: 'emailMatchingUserEntityProfileEmail' },
    ])!;
    const { ctx, issued } = createResolverContext([
      user('by-email', {}, { profile: { email: 'jane.doe@example.com' } }),
    ]);
    await resolve(signInInfo() as any, ctx);
    expect(issued.map(c => c.sub)).toEqual(['user:default/by-email']);
  });

  it('names the account and every reason when nothing matches', async () => {
    const resolve = read([
      { resolver: 'userIdMatchingUserEntityAnnotation' },
      { resolver: 'emailMatchingUserEntityProfileEmail' },
    ])!;
    const { ctx } = createResolverContext([]);
    await expect(
      resolve(signInInfo({ email: undefined, emails: [] }) as any, ctx),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
      message:
        "Signed in to Bitbucket as Jane Doe ({0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}), but no matching User was found in the Backstage catalog. Tried userIdMatchingUserEntityAnnotation: no User has the annotation bitbucket.org/user-id: '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}'; emailMatchingUserEntityProfileEmail: the Bitbucket account has no confirmed primary email address (it has no email address); confirm the address and make it primary at https://bitbucket.org/account/settings/email/. Ask your Backstage admin to add a User entity for this account, e.g. with the annotation bitbucket.org/user-id: '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}'.",
    });
  });

  it('stops at an error that is not "not found"', async () => {
    const resolve = read([
      { resolver: 'userIdMatchingUserEntityAnnotation' },
      { resolver: 'emailMatchingUserEntityProfileEmail' },
    ])!;
    const { ctx, issued } = createResolverContext([
      user('a', {
        'bitbucket.org/user-id': '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}',
      }),
      user('b', {
        'bitbucket.org/user-id': '0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
      }),
      user('c', {}, { profile: { email: 'jane.doe@example.com' } }),
    ]);
    await expect(resolve(signInInfo() as any, ctx)).rejects.toMatchObject({
      name: 'ConflictError',
    });
    expect(issued).toEqual([]);
  });

  it('names an unknown resolver and where it is configured', () => {
    expect(() =>
      read([{ resolver: 'usernameMatchingUserEntityAnnotaton' }]),
    ).toThrow(
      "Sign-in resolver 'usernameMatchingUserEntityAnnotaton' at 'auth.providers.bitbucket.development.signIn.resolvers[0].resolver' is not available. Use one of: emailMatchingUserEntityProfileEmail, emailLocalPartMatchingUserEntityName, userIdMatchingUserEntityAnnotation, usernameMatchingUserEntityAnnotation, accountIdMatchingUserEntityAnnotation.",
    );
  });

  it('names the resolver whose options are invalid', () => {
    expect(() =>
      read([
        { resolver: 'userIdMatchingUserEntityAnnotation' },
        {
          resolver: 'emailMatchingUserEntityProfileEmail',
          allowedDomains: 'example.com',
        },
      ]),
    ).toThrow(
      /^At 'auth\.providers\.bitbucket\.development\.signIn\.resolvers\[1\]': Invalid sign-in resolver options, .*allowedDomains/,
    );
  });
});
