import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * An OAuth consumer, as registered under a workspace's "OAuth consumers" settings.
 *
 * @public
 */
export interface SeedConsumer {
  /** The consumer key, sent by clients as `client_id`. */
  key: string;
  /** The consumer secret, sent by clients as `client_secret`. */
  secret: string;
  /** The registered callback URL; a request's `redirect_uri` must start with it. */
  callbackUrl: string;
  /** The consumer's classic permissions, e.g. `account`, `email`, `team`. */
  permissions: string[];
  /**
   * Slugs of the workspaces whose members the consumer's client-credentials
   * token may list (on Bitbucket, the workspace the consumer was created in).
   * None when omitted.
   */
  workspaces?: string[];
}

/**
 * One email address of a seeded user.
 *
 * @public
 */
export interface SeedEmail {
  email: string;
  primary?: boolean;
  confirmed?: boolean;
}

/**
 * A seeded user's membership of one workspace.
 *
 * @public
 */
export interface SeedWorkspace {
  slug: string;
  name?: string;
  /** Braced UUID; derived from the slug when omitted. */
  uuid?: string;
  role: 'owner' | 'collaborator' | 'member';
}

/**
 * A Bitbucket Cloud account that can sign in through the emulator.
 *
 * @public
 */
export interface SeedUser {
  /** Bitbucket UUID, with curly braces. */
  uuid: string;
  /** Atlassian account id, e.g. `557058:<uuid>` or 24 hex digits. */
  accountId: string;
  /** Deprecated by Bitbucket (GDPR); only returned by `/2.0/user` when seeded. */
  username?: string;
  nickname: string;
  displayName: string;
  emails: SeedEmail[];
  workspaces?: SeedWorkspace[];
}

/**
 * The consumers and users an emulator starts with.
 *
 * @public
 */
export interface EmulatorSeed {
  consumers: SeedConsumer[];
  users: SeedUser[];
}

/**
 * Absolute path of the bundled demo seed (`seeds/demo.yaml`).
 *
 * @public
 */
export const demoSeedPath: string = resolvePath(
  // src/ (as source) and dist/ (if ever built) both sit one level below the
  // package root, next to seeds/.
  // eslint-disable-next-line no-restricted-syntax
  __dirname,
  '..',
  'seeds',
  'demo.yaml',
);

/** Classic OAuth consumer scopes of Bitbucket Cloud. */
export const CLASSIC_SCOPES: readonly string[] = [
  'account',
  'account:write',
  'email',
  'team',
  'team:write',
  'repository',
  'repository:write',
  'repository:admin',
  'repository:delete',
  'pullrequest',
  'pullrequest:write',
  'project',
  'project:admin',
  'project:write',
  'snippet',
  'snippet:write',
  'issue',
  'issue:write',
  'wiki',
  'webhook',
  'pipeline',
  'pipeline:write',
  'pipeline:variable',
  'runner',
  'runner:write',
];

const WORKSPACE_ROLES = ['owner', 'collaborator', 'member'] as const;
const BRACED_UUID =
  /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/i;
const SLUG = /^[a-z0-9][a-z0-9_.-]*$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;

class Validator {
  constructor(private readonly source: string) {}

  fail(path: string, message: string): never {
    throw new Error(
      `Invalid emulator seed (${this.source}): ${path} ${message}`,
    );
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `must be an object, got ${describeValue(value)}`);
    }
    return value as Record<string, unknown>;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) {
      this.fail(path, `must be a list, got ${describeValue(value)}`);
    }
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string' || value.trim() === '') {
      this.fail(
        path,
        `must be a non-empty string, got ${describeValue(value)}`,
      );
    }
    return value;
  }

  boolean(value: unknown, path: string): boolean {
    if (typeof value !== 'boolean') {
      this.fail(path, `must be true or false, got ${describeValue(value)}`);
    }
    return value;
  }

  onlyKeys(value: Record<string, unknown>, allowed: string[], path: string) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        this.fail(
          `${path}.${key}`,
          `is not a known field (expected one of: ${allowed.join(', ')})`,
        );
      }
    }
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) {
    return 'nothing';
  }
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'a list';
  }
  return typeof value === 'string'
    ? `"${value}"`
    : `${typeof value} ${String(value)}`;
}

/**
 * Loads and validates a seed from a YAML file path or from YAML text.
 *
 * A string that contains a line break, or starts with `{` or `[`, is read as
 * YAML text; anything else is a file path.
 *
 * @public
 */
export function loadSeed(pathOrYamlText: string): EmulatorSeed {
  const isText =
    /[\r\n]/.test(pathOrYamlText) || /^\s*[{[]/.test(pathOrYamlText);
  let text = pathOrYamlText;
  let source = 'inline YAML';
  if (!isText) {
    source = resolvePath(pathOrYamlText);
    if (!existsSync(source)) {
      throw new Error(`Emulator seed file not found: ${source}`);
    }
    text = readFileSync(source, 'utf8');
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new Error(
      `Invalid emulator seed (${source}): not valid YAML: ${
        (error as Error).message
      }`,
    );
  }
  return validateSeed(parsed, source);
}

/**
 * Validates a seed object and returns a normalised deep copy.
 *
 * @param source - names the seed in error messages, e.g. a file path.
 */
export function validateSeed(value: unknown, source: string): EmulatorSeed {
  const v = new Validator(source);
  const root = v.object(value, 'seed');
  v.onlyKeys(root, ['consumers', 'users'], 'seed');

  const consumers = v
    .array(root.consumers, 'consumers')
    .map((c, i) => validateConsumerWith(v, c, `consumers[${i}]`));
  const keys = new Set<string>();
  consumers.forEach((c, i) => {
    if (keys.has(c.key)) {
      v.fail(`consumers[${i}].key`, `duplicates the key "${c.key}"`);
    }
    keys.add(c.key);
  });

  const users = v
    .array(root.users, 'users')
    .map((u, i) => validateUserWith(v, u, `users[${i}]`));
  checkUsersAgree(v, users);
  return { consumers, users };
}

/**
 * Validates one user (as given to `addUser`, or a patched user) and returns a
 * normalised copy.
 */
export function validateUser(value: unknown, source: string): SeedUser {
  return validateUserWith(new Validator(source), value, 'user');
}

/**
 * Checks rules that span users: unique UUIDs and one UUID per workspace slug.
 */
export function checkUsers(users: SeedUser[], source: string): void {
  checkUsersAgree(new Validator(source), users);
}

/** The workspace's braced UUID: the seeded one, or one derived from the slug. */
export function workspaceUuid(workspace: SeedWorkspace): string {
  if (workspace.uuid) {
    return workspace.uuid;
  }
  const hex = createHash('sha256')
    .update(`workspace:${workspace.slug}`)
    .digest('hex');
  return `{${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(
    13,
    16,
  )}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}}`;
}

function validateConsumerWith(
  v: Validator,
  value: unknown,
  path: string,
): SeedConsumer {
  const c = v.object(value, path);
  v.onlyKeys(
    c,
    ['key', 'secret', 'callbackUrl', 'permissions', 'workspaces'],
    path,
  );
  const callbackUrl = v.string(c.callbackUrl, `${path}.callbackUrl`);
  let parsed: URL | undefined;
  try {
    parsed = new URL(callbackUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !/^https?:$/.test(parsed.protocol)) {
    v.fail(
      `${path}.callbackUrl`,
      `must be an absolute http(s) URL, got "${callbackUrl}"`,
    );
  }
  const permissions = v
    .array(c.permissions, `${path}.permissions`)
    .map((p, i) => {
      const scope = v.string(p, `${path}.permissions[${i}]`);
      if (!CLASSIC_SCOPES.includes(scope)) {
        v.fail(
          `${path}.permissions[${i}]`,
          `is not a Bitbucket Cloud OAuth scope: "${scope}" (known: ${CLASSIC_SCOPES.join(
            ', ',
          )})`,
        );
      }
      return scope;
    });
  const consumer: SeedConsumer = {
    key: v.string(c.key, `${path}.key`),
    secret: v.string(c.secret, `${path}.secret`),
    callbackUrl,
    permissions: [...new Set(permissions)],
  };
  if (c.workspaces !== undefined) {
    consumer.workspaces = v
      .array(c.workspaces, `${path}.workspaces`)
      .map((w, i) => {
        const slug = v.string(w, `${path}.workspaces[${i}]`);
        if (!SLUG.test(slug)) {
          v.fail(
            `${path}.workspaces[${i}]`,
            `must be a workspace slug (lower-case letters, digits, "-", "_" or "."), got "${slug}"`,
          );
        }
        return slug;
      });
  }
  return consumer;
}

function validateUserWith(
  v: Validator,
  value: unknown,
  path: string,
): SeedUser {
  const u = v.object(value, path);
  v.onlyKeys(
    u,
    [
      'uuid',
      'accountId',
      'username',
      'nickname',
      'displayName',
      'emails',
      'workspaces',
    ],
    path,
  );
  const uuid = v.string(u.uuid, `${path}.uuid`);
  if (!BRACED_UUID.test(uuid)) {
    v.fail(
      `${path}.uuid`,
      `must be a UUID in curly braces like "{0f3c1a9e-6b2d-4c8e-9a71-2d5e8b4f6c10}", got "${uuid}"`,
    );
  }

  const emails = v.array(u.emails, `${path}.emails`).map((e, i) => {
    const ePath = `${path}.emails[${i}]`;
    const o = v.object(e, ePath);
    v.onlyKeys(o, ['email', 'primary', 'confirmed'], ePath);
    const email = v.string(o.email, `${ePath}.email`);
    if (!EMAIL.test(email)) {
      v.fail(`${ePath}.email`, `must be an email address, got "${email}"`);
    }
    const result: SeedEmail = { email };
    if (o.primary !== undefined) {
      result.primary = v.boolean(o.primary, `${ePath}.primary`);
    }
    if (o.confirmed !== undefined) {
      result.confirmed = v.boolean(o.confirmed, `${ePath}.confirmed`);
    }
    return result;
  });
  if (emails.filter(e => e.primary).length > 1) {
    v.fail(`${path}.emails`, 'has more than one primary email');
  }

  let workspaces: SeedWorkspace[] | undefined;
  if (u.workspaces !== undefined) {
    const slugs = new Set<string>();
    workspaces = v.array(u.workspaces, `${path}.workspaces`).map((w, i) => {
      const wPath = `${path}.workspaces[${i}]`;
      const o = v.object(w, wPath);
      v.onlyKeys(o, ['slug', 'name', 'uuid', 'role'], wPath);
      const slug = v.string(o.slug, `${wPath}.slug`);
      if (!SLUG.test(slug)) {
        v.fail(
          `${wPath}.slug`,
          `must be lower-case letters, digits, "-", "_" or ".", got "${slug}"`,
        );
      }
      if (slugs.has(slug)) {
        v.fail(`${wPath}.slug`, `lists the workspace "${slug}" twice`);
      }
      slugs.add(slug);
      const role = v.string(o.role, `${wPath}.role`);
      if (!(WORKSPACE_ROLES as readonly string[]).includes(role)) {
        v.fail(
          `${wPath}.role`,
          `must be one of ${WORKSPACE_ROLES.join(', ')}, got "${role}"`,
        );
      }
      const result: SeedWorkspace = {
        slug,
        role: role as SeedWorkspace['role'],
      };
      if (o.name !== undefined) {
        result.name = v.string(o.name, `${wPath}.name`);
      }
      if (o.uuid !== undefined) {
        result.uuid = v.string(o.uuid, `${wPath}.uuid`);
        if (!BRACED_UUID.test(result.uuid)) {
          v.fail(
            `${wPath}.uuid`,
            `must be a UUID in curly braces, got "${result.uuid}"`,
          );
        }
      }
      return result;
    });
  }

  const user: SeedUser = {
    uuid,
    accountId: v.string(u.accountId, `${path}.accountId`),
    nickname: v.string(u.nickname, `${path}.nickname`),
    displayName: v.string(u.displayName, `${path}.displayName`),
    emails,
  };
  if (u.username !== undefined) {
    user.username = v.string(u.username, `${path}.username`);
  }
  if (workspaces) {
    user.workspaces = workspaces;
  }
  return user;
}

function checkUsersAgree(v: Validator, users: SeedUser[]): void {
  const uuids = new Set<string>();
  const workspaceIds = new Map<string, string>();
  users.forEach((user, i) => {
    const uuid = user.uuid.toLowerCase();
    if (uuids.has(uuid)) {
      v.fail(`users[${i}].uuid`, `duplicates the uuid ${user.uuid}`);
    }
    uuids.add(uuid);
    (user.workspaces ?? []).forEach((w, j) => {
      const id = workspaceUuid(w).toLowerCase();
      const seen = workspaceIds.get(w.slug);
      if (seen && seen !== id) {
        v.fail(
          `users[${i}].workspaces[${j}].uuid`,
          `gives workspace "${w.slug}" the uuid ${id}, but an earlier user gives it ${seen}`,
        );
      }
      workspaceIds.set(w.slug, id);
    });
  });
}
