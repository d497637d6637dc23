import {
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { makeValidator } from '@backstage/catalog-model';
import { InputError } from '@backstage/errors';
import { readBitbucketCloudIntegrationConfigs } from '@backstage/integration';

/** Where the providers are configured, one block per provider id. */
export const CONFIG_ROOT = 'catalog.providers.bitbucketCloudOrg';

/** Every key a provider block may hold; anything else is a typo. */
export const KNOWN_KEYS = [
  'workspaces',
  'clientId',
  'clientSecret',
  'baseUrl',
  'apiBaseUrl',
  'requestTimeout',
  'schedule',
  'memberDrop',
] as const;

export const DEFAULT_BASE_URL = 'https://bitbucket.org';
export const DEFAULT_API_BASE_URL = 'https://api.bitbucket.org/2.0';
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/**
 * A listing that lost more than this share of the last applied listing's
 * members, and at least {@link DEFAULT_MEMBER_DROP_MIN_COUNT} of them, is
 * not applied.
 */
export const DEFAULT_MEMBER_DROP_MAX_SHARE = 0.1;
/** See {@link DEFAULT_MEMBER_DROP_MAX_SHARE}. */
export const DEFAULT_MEMBER_DROP_MIN_COUNT = 2;
/** Used when a provider block has no `schedule`. */
export const DEFAULT_SCHEDULE: SchedulerServiceTaskScheduleDefinition = {
  frequency: { minutes: 30 },
  timeout: { minutes: 3 },
  initialDelay: { seconds: 15 },
};

/** The validated settings of one provider. */
export interface ProviderSettings {
  /** The key under `catalog.providers.bitbucketCloudOrg`. */
  id: string;
  /** `catalog.providers.bitbucketCloudOrg.<id>`, for messages. */
  path: string;
  /** Lower-case slugs or lower-case braced uuids, without duplicates. */
  workspaces: string[];
  /** The Group name configured for a workspace (`{ workspace, group }`), by its entry in `workspaces`. */
  groups: Record<string, string>;
  /** When a listing that lost members is refused. */
  memberDrop: { maxShare: number; minCount: number };
  clientId: string;
  clientSecret: string;
  /** The config path the credentials were read from, for messages. */
  credentialsPath: string;
  /** `<baseUrl>/site/oauth2/access_token` */
  tokenUrl: string;
  /** Without a trailing slash. */
  baseUrl: string;
  /** Without a trailing slash, e.g. `https://api.bitbucket.org/2.0`. */
  apiBaseUrl: string;
  requestTimeoutMs: number;
  schedule: SchedulerServiceTaskScheduleDefinition;
}

const SLUG = /^[a-z0-9][a-z0-9_.-]*$/i;
const BRACED_UUID =
  /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/i;
const BARE_UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads every provider under `catalog.providers.bitbucketCloudOrg`; none
 * when the block is absent. Throws an `InputError` naming the key and the
 * fix, and never a secret's value.
 */
export function readProviderSettings(rootConfig: Config): ProviderSettings[] {
  const raw = rootConfig.getOptional(CONFIG_ROOT);
  if (raw === undefined) return [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(
      `Invalid config value at '${CONFIG_ROOT}': expected one block per provider id, e.g. '${CONFIG_ROOT}.production: { workspaces: [acme], clientId: …, clientSecret: … }'.`,
    );
  }
  const root = rootConfig.getConfig(CONFIG_ROOT);
  return root
    .keys()
    .map(id => readProvider(rootConfig, root, id, `${CONFIG_ROOT}.${id}`));
}

function readProvider(
  rootConfig: Config,
  root: Config,
  id: string,
  path: string,
): ProviderSettings {
  const raw = root.getOptional(id);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(
      `Invalid config value at '${path}': expected a block with at least 'workspaces'.`,
    );
  }
  const config = root.getConfig(id);
  const unknown = config
    .keys()
    .filter(k => !(KNOWN_KEYS as readonly string[]).includes(k));
  if (unknown.length) {
    throw new InputError(
      `Unknown config key${unknown.length > 1 ? 's' : ''} ${unknown
        .map(k => `'${path}.${k}'`)
        .join(
          ', ',
        )}. A Bitbucket Cloud org provider reads only: ${KNOWN_KEYS.join(
        ', ',
      )}. Fix or remove the key so that no setting is silently ignored.`,
    );
  }
  const baseUrl = readUrl(config, 'baseUrl', DEFAULT_BASE_URL, path);
  return {
    id,
    path,
    ...readWorkspaces(config, path),
    memberDrop: readMemberDrop(config, path),
    ...readCredentials(rootConfig, config, path),
    baseUrl,
    tokenUrl: `${baseUrl}/site/oauth2/access_token`,
    apiBaseUrl: readUrl(config, 'apiBaseUrl', DEFAULT_API_BASE_URL, path),
    requestTimeoutMs: readTimeout(config, path),
    schedule: readSchedule(config, path),
  };
}

const WORKSPACE_EXAMPLE =
  "e.g. [acme] or [{ workspace: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', group: acme }]";
const entityNames = makeValidator();

function readWorkspaces(
  config: Config,
  path: string,
): Pick<ProviderSettings, 'workspaces' | 'groups'> {
  const raw = config.getOptional('workspaces');
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new InputError(
      `${
        raw === undefined ? 'Missing required' : 'Invalid'
      } config value at '${path}.workspaces': list the workspaces whose members to import, by slug (the part after bitbucket.org/ in the workspace's URL) or by '{uuid}', ${WORKSPACE_EXAMPLE}.`,
    );
  }
  const groups: Record<string, string> = {};
  const workspaces = raw.map((entry, i) => {
    const at = `${path}.workspaces[${i}]`;
    let value: unknown = entry;
    let group: unknown;
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      const unknown = Object.keys(entry).filter(
        k => k !== 'workspace' && k !== 'group',
      );
      if (unknown.length) {
        throw new InputError(
          `Unknown config key '${at}.${unknown[0]}': a workspace entry is a slug, a '{uuid}', or { workspace, group }, ${WORKSPACE_EXAMPLE}.`,
        );
      }
      value = (entry as Record<string, unknown>).workspace;
      group = (entry as Record<string, unknown>).group;
      if (value === undefined) {
        throw new InputError(
          `Missing required config value at '${at}.workspace': the workspace's slug or '{uuid}', ${WORKSPACE_EXAMPLE}.`,
        );
      }
    }
    const valueAt =
      group === undefined && value === entry ? at : `${at}.workspace`;
    if (typeof value === 'string' && BARE_UUID.test(value)) {
      throw new InputError(
        `Invalid config value at '${valueAt}': a workspace uuid is written with braces, '{${value}}'.`,
      );
    }
    if (
      typeof value !== 'string' ||
      !(SLUG.test(value) || BRACED_UUID.test(value))
    ) {
      throw new InputError(
        `Invalid config value at '${valueAt}': expected a workspace slug such as 'acme' or a uuid such as '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}', got ${JSON.stringify(
          value,
        )}.`,
      );
    }
    const id = value.toLowerCase();
    if (group !== undefined) {
      if (typeof group !== 'string' || !entityNames.isValidEntityName(group)) {
        throw new InputError(
          `Invalid config value at '${at}.group': expected the name of the workspace's Group, a valid entity name such as 'acme' (letters, digits, '-', '_', '.'; at most 63), got ${JSON.stringify(
            group,
          )}.`,
        );
      }
      if (groups[id] !== undefined && groups[id] !== group) {
        throw new InputError(
          `Invalid config value at '${at}.group': the workspace '${value}' is listed twice with two group names, '${groups[id]}' and '${group}'.`,
        );
      }
      groups[id] = group;
    }
    return id;
  });
  return { workspaces: [...new Set(workspaces)], groups };
}

function readMemberDrop(
  config: Config,
  path: string,
): ProviderSettings['memberDrop'] {
  const raw = config.getOptional('memberDrop');
  const result = {
    maxShare: DEFAULT_MEMBER_DROP_MAX_SHARE,
    minCount: DEFAULT_MEMBER_DROP_MIN_COUNT,
  };
  if (raw === undefined) return result;
  const at = `${path}.memberDrop`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(
      `Invalid config value at '${at}': expected { maxShare, minCount }, e.g. { maxShare: 0.1, minCount: 2 }.`,
    );
  }
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'maxShare') {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
        throw new InputError(
          `Invalid config value at '${at}.maxShare': expected a share from 0 to 1 of the last applied listing's members (0.1 is 10 %; 1 accepts any drop), got ${JSON.stringify(
            value,
          )}.`,
        );
      }
      result.maxShare = value;
    } else if (key === 'minCount') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        throw new InputError(
          `Invalid config value at '${at}.minCount': expected a whole number of members >= 1, got ${JSON.stringify(
            value,
          )}.`,
        );
      }
      result.minCount = value;
    } else {
      throw new InputError(
        `Unknown config key '${at}.${key}': memberDrop reads only maxShare and minCount.`,
      );
    }
  }
  return result;
}

/**
 * The provider's own `clientId` and `clientSecret` win; without both, the
 * first `integrations.bitbucketCloud` entry that has an OAuth consumer.
 */
function readCredentials(
  rootConfig: Config,
  config: Config,
  path: string,
): Pick<ProviderSettings, 'clientId' | 'clientSecret' | 'credentialsPath'> {
  const clientId = config.getOptional('clientId');
  const clientSecret = config.getOptional('clientSecret');
  if (clientId !== undefined || clientSecret !== undefined) {
    const missing = clientId === undefined ? 'clientId' : 'clientSecret';
    if (clientId === undefined || clientSecret === undefined) {
      throw new InputError(
        `Missing required config value at '${path}.${missing}': set both clientId and clientSecret (the Key and Secret of the OAuth consumer), or neither to use the consumer of integrations.bitbucketCloud.`,
      );
    }
    return {
      clientId: checkCredential(clientId, `${path}.clientId`),
      clientSecret: checkCredential(clientSecret, `${path}.clientSecret`),
      credentialsPath: path,
    };
  }

  let integrations;
  try {
    integrations = readBitbucketCloudIntegrationConfigs(
      rootConfig.getOptionalConfigArray('integrations.bitbucketCloud') ?? [],
    );
  } catch (error) {
    throw new InputError(
      `Invalid config at 'integrations.bitbucketCloud', read because '${path}' has no clientId and clientSecret: ${
        (error as Error).message
      }`,
    );
  }
  const index = integrations.findIndex(i => i.clientId && i.clientSecret);
  if (index < 0) {
    throw new InputError(
      `Missing required config value at '${path}.clientId': set clientId and clientSecret to the Key and Secret of a Bitbucket OAuth consumer with the permission "Workspace membership: Read" (or set them in integrations.bitbucketCloud). A token or app password of integrations.bitbucketCloud is a person's credential, which this provider does not use.`,
    );
  }
  const at = `integrations.bitbucketCloud[${index}]`;
  return {
    clientId: checkCredential(integrations[index].clientId, `${at}.clientId`),
    clientSecret: checkCredential(
      integrations[index].clientSecret,
      `${at}.clientSecret`,
    ),
    credentialsPath: at,
  };
}

function checkCredential(value: unknown, at: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InputError(
      `Invalid config value at '${at}': expected the non-empty Key or Secret of the OAuth consumer.`,
    );
  }
  if (/\s/.test(value)) {
    // never echo the value: it may be the secret
    throw new InputError(
      `Invalid config value at '${at}': it contains whitespace (often a trailing space or newline from copy-paste). Remove it; consumer keys and secrets never contain any.`,
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
  const at = `${path}.${key}`;
  let url: URL | undefined;
  try {
    url = new URL(String(raw));
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new InputError(
      `Invalid config value at '${at}': expected an absolute https URL such as '${fallback}', got '${String(
        raw,
      )}'.`,
    );
  }
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
  if (url.protocol === 'http:' && !loopback) {
    throw new InputError(
      `Invalid config value at '${at}': plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https for '${url.host}'.`,
    );
  }
  if (url.search || url.hash) {
    throw new InputError(
      `Invalid config value at '${at}': remove the query or fragment from '${String(
        raw,
      )}'.`,
    );
  }
  return url.toString().replace(/\/+$/, '');
}

function readTimeout(config: Config, path: string): number {
  const raw = config.getOptional('requestTimeout');
  if (raw === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw > 0) return raw;
  throw new InputError(
    `Invalid config value at '${path}.requestTimeout': expected a positive number of milliseconds, e.g. 10000.`,
  );
}

function readSchedule(
  config: Config,
  path: string,
): SchedulerServiceTaskScheduleDefinition {
  if (!config.has('schedule')) return DEFAULT_SCHEDULE;
  try {
    return readSchedulerServiceTaskScheduleDefinitionFromConfig(
      config.getConfig('schedule'),
    );
  } catch (error) {
    throw new InputError(
      `Invalid config value at '${path}.schedule': ${
        (error as Error).message
      }. Use e.g. { frequency: { minutes: 30 }, timeout: { minutes: 3 } }.`,
    );
  }
}
