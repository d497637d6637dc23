import { Entity } from '@backstage/catalog-model';
import { EmulatorSeed, SeedUser } from '@internal/bitbucket-cloud-emulator';

export const CLIENT_ID = 'bench-consumer';
export const CLIENT_SECRET = 'bench-consumer-secret';
/** The workspace every benchmark user belongs to, and ours allows. */
export const WORKSPACE = 'bench';
/** Its uuid, seeded so that the catalog's Group can name it. */
export const WORKSPACE_UUID = '{b3c4d5e6-0000-4000-8000-00000000beec}';
/**
 * The org import's provider, as its entities' location annotations name it
 * (the contract between plugins/catalog-backend-module-bitbucket-cloud-org
 * and the sign-in: `bitbucket-cloud-org:<providerId>`).
 */
export const ORG_IMPORT_LOCATION = 'bitbucket-cloud-org:bench';
/** The Group annotation with the time of the listing its members come from. */
export const MEMBERS_LISTED_AT = 'bitbucket.org/members-listed-at';
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
        {
          slug: WORKSPACE,
          uuid: WORKSPACE_UUID,
          name: 'Bench',
          role: i === 0 ? 'owner' : 'member',
        },
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
 * The workspace's Group as the org import writes it (the lead's contract
 * between the org import and the sign-in; the auth module trusts exactly this): both location
 * annotations `bitbucket-cloud-org:<providerId>`, the workspace's uuid and
 * slug, the time of the listing, and the members' braced lower-case uuids,
 * sorted, joined by commas (owners and members; the bench has no
 * collaborators).
 */
export function benchWorkspaceGroup(
  users: SeedUser[],
  listedAt: string = new Date().toISOString(),
): Entity {
  const members = users
    .filter(u => u.workspaces?.some(w => w.slug === WORKSPACE))
    .map(u => u.uuid.toLowerCase())
    .sort();
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: {
      name: WORKSPACE,
      namespace: 'default',
      annotations: {
        'backstage.io/managed-by-location': ORG_IMPORT_LOCATION,
        'backstage.io/managed-by-origin-location': ORG_IMPORT_LOCATION,
        'bitbucket.org/workspace-uuid': WORKSPACE_UUID,
        'bitbucket.org/workspace-slug': WORKSPACE,
        [MEMBERS_LISTED_AT]: listedAt,
        'bitbucket.org/member-uuids': members.join(','),
      },
    },
    spec: { type: 'bitbucket-workspace', children: [] },
  };
}

/**
 * One catalog User per Bitbucket user, annotated with the braced uuid: what
 * both modules' `userIdMatchingUserEntityAnnotation` look up; and the
 * workspace's Group as the org import writes it (read by ours in the
 * catalog setup, ignored by the others).
 */
export function benchEntities(users: SeedUser[]): Entity[] {
  return [...benchUsersAsEntities(users), benchWorkspaceGroup(users)];
}

function benchUsersAsEntities(users: SeedUser[]): Entity[] {
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
