import { LoggerService } from '@backstage/backend-plugin-api';
import { NotAllowedError } from '@backstage/errors';
import { AccountBudget } from './accountBudget';
import { BitbucketClient } from './client';
import { BitbucketProviderSettings } from './config';
import { Deadline } from './deadline';
import {
  BitbucketEmail,
  BitbucketProfile,
  toBitbucketProfile,
} from './profile';
import {
  WorkspaceRefusal,
  workspaceRefusal,
  workspaceSettingsFingerprint,
} from './workspaces';

/** Where a decision was taken, for the audit line. */
export type Step = 'sign-in' | 'refresh';

/** The checked profile of a sign-in, with when Bitbucket answered it. */
export interface SignInProfile {
  profile: BitbucketProfile;
  /**
   * When its emails and roles were read (ms since the epoch): now, or
   * earlier for an account over its budget that reuses its kept profile.
   */
  fetchedAt: number;
}

/** The user (`GET /2.0/user`) and emails a caller already asked Bitbucket for. */
export interface KnownIdentity {
  user: unknown;
  emails: Promise<BitbucketEmail[]>;
}

/** What a full re-read of a refresh knows of its session. */
export interface FullContext {
  /** When the session's membership was last decided, if it has one. */
  decidedAt?: number;
  known?: KnownIdentity;
}

/**
 * What a sign-in or a refresh fetches from Bitbucket, and the workspace
 * check of the result: the full profile (user, emails and, with an
 * allow-list, workspaces and roles) in one parallel round; the roles alone
 * when only the workspace check is due; and, for an account over its
 * sign-in budget, its kept profile after `GET /2.0/user`. Only sign-ins
 * the workspace check admits count against that budget: an account outside
 * the allowed workspaces cannot switch everyone's sign-ins to
 * `GET /2.0/user` first.
 */
export class ProfileSource {
  readonly #client: BitbucketClient;
  readonly #settings: BitbucketProviderSettings;
  readonly #accounts: AccountBudget;
  readonly #logger?: LoggerService;
  /** Of the workspace settings: a cached check made under others is not reused. */
  readonly fingerprint: string;

  constructor(options: {
    client: BitbucketClient;
    settings: BitbucketProviderSettings;
    logger?: LoggerService;
  }) {
    this.#client = options.client;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#accounts = new AccountBudget(
      options.settings.accountSignInsPerHour,
      options.logger,
    );
    this.fingerprint = workspaceSettingsFingerprint(
      options.settings.workspaces,
    );
  }

  /** The checked profile of a new sign-in. */
  async forSignIn(
    accessToken: string,
    deadline: Deadline,
    known?: KnownIdentity,
  ): Promise<SignInProfile> {
    const allowed = this.#settings.workspaces.allowed;
    let profile: BitbucketProfile;
    let fetchedAt = Date.now();
    let fetched = true;
    if (this.#accounts.identifyFirst || known) {
      const user = known
        ? known.user
        : await this.#client.getCurrentUser(accessToken, deadline);
      const emails = known?.emails;
      const uuid = (user as { uuid?: unknown } | undefined)?.uuid;
      const kept =
        typeof uuid === 'string' && this.#accounts.identifyFirst
          ? this.#accounts.reusable(
              uuid,
              this.fingerprint,
              this.#settings.profileCacheTtlMs,
            )
          : undefined;
      if (kept) {
        // the account as Bitbucket describes it now, its emails and roles as kept
        profile = {
          ...toBitbucketProfile(user, kept.profile.emails),
          workspaces: kept.profile.workspaces,
        };
        fetchedAt = kept.fetchedAt;
        fetched = false;
      } else {
        profile = await this.#client.fetchProfile(
          accessToken,
          { allowed, user, emails },
          deadline,
        );
      }
    } else {
      profile = await this.#client.fetchProfile(
        accessToken,
        { allowed },
        deadline,
      );
    }
    // refused accounts do not count: they cannot change how others sign in
    this.check(profile, 'sign-in');
    this.#accounts.record(
      profile.uuid,
      fetched ? { profile, fingerprint: this.fingerprint } : undefined,
    );
    return { profile, fetchedAt };
  }

  /** The checked full profile, for a refresh whose cached one is too old. */
  async full(
    accessToken: string,
    deadline: Deadline,
    step: Step,
    context: FullContext = {},
  ): Promise<BitbucketProfile> {
    const profile = await this.#client.fetchProfile(
      accessToken,
      { allowed: this.#settings.workspaces.allowed, ...context.known },
      deadline,
    );
    this.check(profile, step);
    return profile;
  }

  /** The cached profile with its workspace roles read again, checked. */
  async membership(
    accessToken: string,
    cached: BitbucketProfile,
    deadline: Deadline,
    step: Step,
  ): Promise<BitbucketProfile> {
    const allowed = this.#settings.workspaces.allowed;
    const profile = allowed
      ? {
          ...cached,
          workspaces: await this.#client.fetchMembership(
            accessToken,
            allowed,
            cached.workspaces ?? [],
            deadline,
          ),
        }
      : cached;
    this.check(profile, step);
    return profile;
  }

  /**
   * The profile with its workspace check answered without calling
   * Bitbucket, if this source can (the catalog's, src/membershipSource.ts);
   * Bitbucket's cannot: undefined.
   */
  async withoutBitbucket(
    _cached: BitbucketProfile,
    _decidedAt: number,
  ): Promise<BitbucketProfile | undefined> {
    return undefined;
  }

  /**
   * The workspace check, before any catalog lookup: refuses with a message
   * for the user and writes the whole reason to the audit line.
   */
  check(profile: BitbucketProfile, step: Step): void {
    const refusal = workspaceRefusal(profile, this.#settings.workspaces);
    if (refusal) this.refuse(profile, step, refusal);
  }

  /** Writes the refusal's audit line and refuses with its message for the user. */
  protected refuse(
    profile: BitbucketProfile,
    step: Step,
    refusal: WorkspaceRefusal,
  ): never {
    this.#logger?.info('Bitbucket sign-in decision', {
      step,
      providerUser: profile.uuid,
      accountId: profile.accountId,
      resolver: 'none (refused before the catalog)',
      workspaceCheck: 'refused',
      outcome: 'refused',
      reason: refusal.auditReason,
    });
    throw new NotAllowedError(refusal.userMessage);
  }
}
