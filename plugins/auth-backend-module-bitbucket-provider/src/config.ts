import { Config, readDurationFromConfig } from '@backstage/config';
import { durationToMilliseconds } from '@backstage/types';
import { InputError } from '@backstage/errors';

/** Bitbucket Cloud's own hosts, used when `baseUrl` / `apiBaseUrl` are not set. */
export const DEFAULT_BASE_URL = 'https://bitbucket.org';
export const DEFAULT_API_BASE_URL = 'https://api.bitbucket.org/2.0';
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** One deadline for every Bitbucket call of a sign-in or refresh. */
export const DEFAULT_SIGN_IN_TIMEOUT_MS = 30_000;

/**
 * Every key this module (or auth-node on its behalf) reads under
 * `auth.providers.bitbucket.<env>`. Anything else is a typo or a key of a
 * feature that does not exist, and is reported at start-up.
 */
export const KNOWN_KEYS = [
  'clientId',
  'clientSecret',
  'callbackUrl',
  'additionalScopes',
  'sessionDuration',
  'signIn',
  'baseUrl',
  'apiBaseUrl',
  'requestTimeout',
  'allowedWorkspaces',
  'minimumWorkspaceRole',
  'workspaceOwnership',
  'profileCacheTtl',
  'identityCacheTtl',
  'refreshGracePeriod',
  'signInTimeout',
  'accountSignInsPerHour',
  'preconnectHoldTime',
  'workspaceMembershipSource',
  'workspaceMembershipCatalogMaxAge',
] as const;

/** Bitbucket's workspace roles, from least to most privileged. */
export const WORKSPACE_ROLES = ['collaborator', 'member', 'owner'] as const;
/** A Bitbucket workspace role. */
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number];

/**
 * When membership comes from Bitbucket: a removal from a workspace takes
 * effect within this plus Backstage's own token's hour.
 */
export const DEFAULT_PROFILE_CACHE_TTL_MS = 30 * 60 * 1000;
export const DEFAULT_IDENTITY_CACHE_TTL_MS = 8 * 60 * 60 * 1000;
export const DEFAULT_REFRESH_GRACE_PERIOD_MS = 60 * 1000;

/** Where the workspace check looks first: the imported catalog, or Bitbucket only. */
export type MembershipSource = 'catalog' | 'bitbucket';
/**
 * The oldest catalog listing the workspace check uses: two runs of the org
 * import's default 30-minute schedule. One failed run changes nothing;
 * after two, Bitbucket is asked until an import succeeds again.
 */
export const DEFAULT_CATALOG_MAX_AGE_MS = 60 * 60 * 1000;
const MIN_CATALOG_MAX_AGE_MS = 60 * 1000;
const MAX_CATALOG_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** A longer grace period would let a stolen, rotated refresh token be replayed for longer. */
const MAX_REFRESH_GRACE_PERIOD_MS = 10 * 60 * 1000;

/**
 * One entry of `allowedWorkspaces`: a slug, which matches whichever
 * workspace holds that slug now, or a uuid, which matches that workspace
 * only, even after it changed its slug and another took the old one.
 */
export type AllowedWorkspace =
  | { kind: 'slug'; slug: string }
  | { kind: 'uuid'; uuid: string };

/** Workspace restrictions and ownership of one environment. */
export interface WorkspaceSettings {
  /** The allow-list; undefined = no restriction. */
  allowed?: AllowedWorkspace[];
  /** The least role in an allowed workspace; `member` unless configured. */
  minimumRole?: WorkspaceRole;
  ownership: { enabled: boolean; namespace: string; prefix: string };
}

/** The validated settings of one environment of the provider. */
export interface BitbucketProviderSettings {
  clientId: string;
  clientSecret: string;
  /** `<baseUrl>/site/oauth2/authorize` */
  authorizationUrl: string;
  /** `<baseUrl>/site/oauth2/access_token` */
  tokenUrl: string;
  /** REST base, without a trailing slash, e.g. `https://api.bitbucket.org/2.0`. */
  apiBaseUrl: string;
  /** Milliseconds before a call to Bitbucket is abandoned. */
  requestTimeoutMs: number;
  workspaces: WorkspaceSettings;
  /** How long a workspace check serves refreshes; 0 = never cached. */
  profileCacheTtlMs: number;
  /** How long the user and emails serve refreshes (at least profileCacheTtl). */
  identityCacheTtlMs: number;
  /** How long a rotated refresh token still gets the session it rotated to; 0 = never. */
  refreshGracePeriodMs: number;
  /** Milliseconds for all the Bitbucket calls of one sign-in or refresh. */
  signInTimeoutMs: number;
  /** Sign-ins of one account per hour before they reuse its profile; 0 = no limit. */
  accountSignInsPerHour: number;
  /** Whether a sign-in needs `GET /2.0/user/workspaces`. */
  needsWorkspaces: boolean;
  /** `catalog`: the import's Groups answer first, Bitbucket on a miss. */
  membershipSource: MembershipSource;
  /** The oldest `bitbucket.org/members-listed-at` the catalog answer uses. */
  catalogMaxAgeMs: number;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** Levenshtein distance, for "did you mean" suggestions on unknown keys. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[y.length];
}

/** The known key closest to `key`, if it is close enough to be a typo. */
export function nearestKnownKey(key: string): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const known of KNOWN_KEYS) {
    const d = distance(key, known);
    if (!best || d < best.d) best = { key: known, d };
  }
  const limit = Math.max(2, Math.floor(key.length / 3));
  if (best && best.d <= limit) return best.key;
  const prefixMatch = KNOWN_KEYS.find(
    k =>
      k.toLowerCase().startsWith(key.toLowerCase()) ||
      key.toLowerCase().startsWith(k.toLowerCase()),
  );
  return prefixMatch;
}

function readCredential(
  config: Config,
  key: 'clientId' | 'clientSecret',
  path: string,
): string {
  const value = config.getOptional(key);
  if (value === undefined || value === null || value === '') {
    throw new InputError(
      `Missing required config value at '${path}.${key}': set it to the ${
        key === 'clientId' ? 'Key' : 'Secret'
      } of your Bitbucket OAuth consumer (Workspace settings > OAuth consumers).`,
    );
  }
  if (typeof value !== 'string') {
    throw new InputError(
      `Invalid config value at '${path}.${key}': expected a string, got ${typeof value}.`,
    );
  }
  if (value.trim() !== value || /\s/.test(value)) {
    // Never echo the value: it may be a secret.
    throw new InputError(
      `Invalid config value at '${path}.${key}': it contains whitespace (often a trailing space or newline from copy-paste). Remove the whitespace; Bitbucket consumer keys and secrets never contain any.`,
    );
  }
  return value;
}

function readUrl(
  config: Config,
  key: 'baseUrl' | 'apiBaseUrl',
  fallback: string,
  path: string,
): string {
  const raw = config.getOptional(key);
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new InputError(
      `Invalid config value at '${path}.${key}': expected a URL string such as '${fallback}'.`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(
      `Invalid config value at '${path}.${key}': '${raw}' is not an absolute URL; use e.g. '${fallback}'.`,
    );
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new InputError(
      `Invalid config value at '${path}.${key}': plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https for '${url.host}'.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(
      `Invalid config value at '${path}.${key}': '${url.protocol}' is not supported; use https.`,
    );
  }
  if (url.search || url.hash) {
    throw new InputError(
      `Invalid config value at '${path}.${key}': remove the query or fragment from '${raw}'.`,
    );
  }
  return url.toString().replace(/\/+$/, '');
}

function readTimeout(
  config: Config,
  key: 'requestTimeout' | 'signInTimeout',
  fallback: number,
  path: string,
): number {
  const raw = config.getOptional(key);
  if (raw === undefined) return fallback;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw > 0) {
    return raw;
  }
  throw new InputError(
    `Invalid config value at '${path}.${key}': expected a positive number of milliseconds, e.g. ${fallback}.`,
  );
}

const SLUG = /^[a-z0-9][a-z0-9_.-]*$/i;
const BRACED_UUID =
  /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/i;

const BARE_UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function readAllowedEntry(value: unknown): AllowedWorkspace | undefined {
  // a uuid without braces is ambiguous (a slug may look like one): refused
  if (typeof value !== 'string' || BARE_UUID.test(value)) return undefined;
  if (BRACED_UUID.test(value)) {
    return { kind: 'uuid', uuid: value.toLowerCase() };
  }
  return SLUG.test(value)
    ? { kind: 'slug', slug: value.toLowerCase() }
    : undefined;
}

/** How an entry is written in messages and logs: the slug, or the braced uuid. */
export function describeAllowed(entry: AllowedWorkspace): string {
  return entry.kind === 'slug' ? entry.slug : entry.uuid;
}
const ENTITY_NAMESPACE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/i;

const OWNERSHIP_EXPECTED: Record<string, string> = {
  enabled: 'expected true or false',
  namespace: "expected an entity namespace such as 'default'",
  prefix: 'expected a string of letters, digits, -, _ or .',
};

function readWorkspaces(config: Config, path: string): WorkspaceSettings {
  let allowed: AllowedWorkspace[] | undefined;
  const rawAllowed = config.getOptional('allowedWorkspaces');
  if (rawAllowed !== undefined) {
    const entries = Array.isArray(rawAllowed)
      ? rawAllowed.map(readAllowedEntry)
      : [];
    if (entries.length === 0 || entries.some(e => !e)) {
      throw new InputError(
        `Invalid config value at '${path}.allowedWorkspaces': expected a non-empty list of workspace uuids with their braces (recommended: they never change), or slugs (the part after bitbucket.org/ in the workspace URL), e.g. ['{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', acme-contractors].`,
      );
    }
    const unique = new Map<string, AllowedWorkspace>();
    for (const entry of entries as AllowedWorkspace[]) {
      unique.set(`${entry.kind}:${describeAllowed(entry)}`, entry);
    }
    allowed = [...unique.values()];
  }

  const rawRole = config.getOptional('minimumWorkspaceRole');
  if (
    rawRole !== undefined &&
    !(WORKSPACE_ROLES as readonly unknown[]).includes(rawRole)
  ) {
    throw new InputError(
      `Invalid config value at '${path}.minimumWorkspaceRole': expected one of ${WORKSPACE_ROLES.join(
        ', ',
      )}, got '${String(rawRole)}'.`,
    );
  }
  if (rawRole !== undefined && !allowed) {
    throw new InputError(
      `Config value at '${path}.minimumWorkspaceRole' needs '${path}.allowedWorkspaces': the role is checked in the allowed workspaces only.`,
    );
  }

  const own = config.getOptionalConfig('workspaceOwnership');
  const ownPath = `${path}.workspaceOwnership`;
  if (own) {
    const unknown = own
      .keys()
      .filter(k => !['enabled', 'namespace', 'prefix'].includes(k));
    if (unknown.length) {
      throw new InputError(
        `Unknown config key '${ownPath}.${unknown[0]}'. '${ownPath}' reads only: enabled, namespace, prefix.`,
      );
    }
  }
  const read = <T>(key: string, fallback: T, ok: (v: unknown) => boolean) => {
    const v = own?.getOptional(key);
    if (v === undefined) return fallback;
    if (!ok(v)) {
      throw new InputError(
        `Invalid config value at '${ownPath}.${key}': ${OWNERSHIP_EXPECTED[key]}.`,
      );
    }
    return v as T;
  };
  const enabled = read('enabled', false, v => typeof v === 'boolean');
  if (enabled && !allowed) {
    throw new InputError(
      `Config value at '${ownPath}' needs '${path}.allowedWorkspaces': anyone can create a Bitbucket workspace with a free slug such as 'platform', so ownership is granted only for the workspaces you list there.`,
    );
  }
  return {
    allowed,
    // a collaborator only has access to some repositories: a guest of the workspace
    minimumRole: allowed
      ? (rawRole as WorkspaceRole | undefined) ?? 'member'
      : undefined,
    ownership: {
      enabled,
      namespace: read(
        'namespace',
        'default',
        v => typeof v === 'string' && ENTITY_NAMESPACE.test(v),
      ),
      prefix: read(
        'prefix',
        '',
        v => typeof v === 'string' && /^[a-z0-9_.-]*$/i.test(v),
      ),
    },
  };
}

function readDuration(
  config: Config,
  key: 'profileCacheTtl' | 'identityCacheTtl' | 'refreshGracePeriod',
  fallback: number,
  path: string,
  example: string,
): number {
  const raw = config.getOptional(key);
  if (raw === undefined) return fallback;
  if (raw === 0) return 0;
  try {
    const ms = durationToMilliseconds(readDurationFromConfig(config, { key }));
    if (ms >= 0) return ms;
  } catch {
    // reported below
  }
  throw new InputError(
    `Invalid config value at '${path}.${key}': expected a duration such as ${example}, or 0 to disable it.`,
  );
}

function readCacheSettings(config: Config, path: string) {
  const profileCacheTtlMs = readDuration(
    config,
    'profileCacheTtl',
    DEFAULT_PROFILE_CACHE_TTL_MS,
    path,
    "'30m', { minutes: 30 } or 'PT30M'",
  );
  const identityCacheTtlMs = readDuration(
    config,
    'identityCacheTtl',
    Math.max(DEFAULT_IDENTITY_CACHE_TTL_MS, profileCacheTtlMs),
    path,
    "'8h', { hours: 8 } or 'PT8H'",
  );
  if (identityCacheTtlMs < profileCacheTtlMs) {
    throw new InputError(
      `Invalid config value at '${path}.identityCacheTtl': it must be at least profileCacheTtl (${
        profileCacheTtlMs / 1000
      } s), since the workspace check re-reads only the workspace roles.`,
    );
  }
  const refreshGracePeriodMs = readDuration(
    config,
    'refreshGracePeriod',
    DEFAULT_REFRESH_GRACE_PERIOD_MS,
    path,
    "'60s', { seconds: 60 } or 'PT60S'",
  );
  if (refreshGracePeriodMs > MAX_REFRESH_GRACE_PERIOD_MS) {
    throw new InputError(
      `Invalid config value at '${path}.refreshGracePeriod': at most 10 minutes; the period bounds how long a used refresh token can still be replayed.`,
    );
  }
  return { profileCacheTtlMs, identityCacheTtlMs, refreshGracePeriodMs };
}

function readMembershipSettings(config: Config, path: string) {
  const source = config.getOptional('workspaceMembershipSource') ?? 'catalog';
  if (source !== 'catalog' && source !== 'bitbucket') {
    throw new InputError(
      `Invalid config value at '${path}.workspaceMembershipSource': expected 'catalog' (the members the Bitbucket Cloud org import wrote to the catalog, Bitbucket on a miss) or 'bitbucket' (ask Bitbucket at every workspace check), got '${String(
        source,
      )}'.`,
    );
  }
  const key = 'workspaceMembershipCatalogMaxAge';
  const raw = config.getOptional(key);
  if (raw !== undefined && source !== 'catalog') {
    throw new InputError(
      `Config value at '${path}.${key}' is read only with workspaceMembershipSource 'catalog': remove it, or set workspaceMembershipSource to 'catalog'.`,
    );
  }
  let catalogMaxAgeMs = DEFAULT_CATALOG_MAX_AGE_MS;
  if (raw !== undefined) {
    let ms = NaN;
    try {
      ms = durationToMilliseconds(readDurationFromConfig(config, { key }));
    } catch {
      // reported below
    }
    if (!(ms >= MIN_CATALOG_MAX_AGE_MS && ms <= MAX_CATALOG_MAX_AGE_MS)) {
      throw new InputError(
        `Invalid config value at '${path}.${key}': expected a duration from 1 minute to 24 hours such as '1h', { hours: 1 } or 'PT1H': a listing older than this is not used, and Bitbucket is asked instead.`,
      );
    }
    catalogMaxAgeMs = ms;
  }
  return { membershipSource: source as MembershipSource, catalogMaxAgeMs };
}

export const DEFAULT_ACCOUNT_SIGN_INS_PER_HOUR = 5;

function readAccountSignInsPerHour(config: Config, path: string): number {
  const raw = config.getOptional('accountSignInsPerHour');
  if (raw === undefined) return DEFAULT_ACCOUNT_SIGN_INS_PER_HOUR;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  throw new InputError(
    `Invalid config value at '${path}.accountSignInsPerHour': expected a whole number >= 0 (0 turns the limit off), e.g. ${DEFAULT_ACCOUNT_SIGN_INS_PER_HOUR}.`,
  );
}

/** Reports keys this module does not know, naming the nearest known key. */
export function checkUnknownKeys(config: Config, path: string): void {
  const unknown = config.keys().filter(k => !(KNOWN_KEYS as any).includes(k));
  if (unknown.length === 0) return;
  const parts = unknown.map(k => {
    const near = nearestKnownKey(k);
    return near ? `'${path}.${k}' (did you mean '${near}'?)` : `'${path}.${k}'`;
  });
  throw new InputError(
    `Unknown config key${unknown.length > 1 ? 's' : ''} ${parts.join(
      ', ',
    )}. The Bitbucket provider reads only: ${KNOWN_KEYS.join(
      ', ',
    )}. Fix or remove the key so that no setting is silently ignored.`,
  );
}

/**
 * Reads and validates one environment's config, e.g. the block at
 * `auth.providers.bitbucket.development`. Throws an `InputError` naming the
 * key and the fix; never includes a secret in the message.
 */
export function readBitbucketProviderSettings(
  config: Config,
  path = 'auth.providers.bitbucket.<env>',
): BitbucketProviderSettings {
  checkUnknownKeys(config, path);
  const clientId = readCredential(config, 'clientId', path);
  const clientSecret = readCredential(config, 'clientSecret', path);
  const baseUrl = readUrl(config, 'baseUrl', DEFAULT_BASE_URL, path);
  const apiBaseUrl = readUrl(config, 'apiBaseUrl', DEFAULT_API_BASE_URL, path);
  const workspaces = readWorkspaces(config, path);
  const callbackUrl = config.getOptional('callbackUrl');
  if (callbackUrl !== undefined) {
    try {
      new URL(String(callbackUrl)); // eslint-disable-line no-new
    } catch {
      throw new InputError(
        `Invalid config value at '${path}.callbackUrl': '${callbackUrl}' is not an absolute URL; use e.g. 'https://backstage.example.com/api/auth/bitbucket/handler/frame'.`,
      );
    }
  }
  return {
    clientId,
    clientSecret,
    authorizationUrl: `${baseUrl}/site/oauth2/authorize`,
    tokenUrl: `${baseUrl}/site/oauth2/access_token`,
    apiBaseUrl,
    requestTimeoutMs: readTimeout(
      config,
      'requestTimeout',
      DEFAULT_REQUEST_TIMEOUT_MS,
      path,
    ),
    signInTimeoutMs: readTimeout(
      config,
      'signInTimeout',
      DEFAULT_SIGN_IN_TIMEOUT_MS,
      path,
    ),
    accountSignInsPerHour: readAccountSignInsPerHour(config, path),
    workspaces,
    ...readCacheSettings(config, path),
    needsWorkspaces: Boolean(workspaces.allowed),
    ...readMembershipSettings(config, path),
  };
}
