import { Entity } from '@backstage/catalog-model';
import { EmulatorSeed, SeedUser } from '@internal/bitbucket-cloud-emulator';

export const CLIENT_ID = 'bench-consumer';
export const CLIENT_SECRET = 'bench-consumer-secret';
/** The workspace every benchmark user belongs to, and ours allows. */
export const WORKSPACE = 'bench';
export const USER_ID_ANNOTATION = 'bitbucket.org/user-id';

function uuidOf(i: number): string {
  const n = String(i).padStart(12, '0');
  return `{b3c4d5e6-0000-4000-8000-${n}}`;
}

/** `count` distinct Bitbucket users: one confirmed primary email, member of the bench workspace. */
export function benchUsers(count: number): SeedUser[] {
  return Array.from({ length: count }, (_, i) => {
    const name = `user${String(i + 1).padStart(4, '0')}`;
    return {
      uuid: uuidOf(i + 1),
      accountId: `557058:b3c4d5e6-0000-4000-8000-${String(i + 1).padStart(
        12,
        '0',
      )}`,
      nickname: name,
      displayName: `Bench User ${i + 1}`,
      emails: [
        { email: `${name}@example.com`, primary: true, confirmed: true },
      ],
      workspaces: [
        { slug: WORKSPACE, name: 'Bench', role: i === 0 ? 'owner' : 'member' },
      ],
    };
  });
}

/**
 * The emulator's seed: one consumer whose callback URL prefix-matches every
 * backend on 127.0.0.1, with the permissions ours asks for.
 */
export function benchSeed(users: SeedUser[]): EmulatorSeed {
  return {
    consumers: [
      {
        key: CLIENT_ID,
        secret: CLIENT_SECRET,
        callbackUrl: 'http://127.0.0.1:',
        permissions: ['account', 'email', 'team'],
      },
    ],
    users,
  };
}

/**
 * One catalog User per Bitbucket user, annotated with the braced uuid: what
 * both modules' `userIdMatchingUserEntityAnnotation` look up.
 */
export function benchEntities(users: SeedUser[]): Entity[] {
  return users.map(user => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: {
      name: user.nickname,
      namespace: 'default',
      annotations: { [USER_ID_ANNOTATION]: user.uuid },
    },
    spec: {
      profile: {
        displayName: user.displayName,
        email: user.emails[0].email,
      },
      memberOf: [],
    },
  }));
}
