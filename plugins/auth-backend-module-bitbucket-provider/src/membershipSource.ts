import { LoggerService } from '@backstage/backend-plugin-api';
import { CatalogAnswer, CatalogMembership } from './catalogMembership';
import { BitbucketClient } from './client';
import { BitbucketProviderSettings } from './config';
import { Deadline } from './deadline';
import { BitbucketProfile, toBitbucketProfile } from './profile';
import {
  FullContext,
  KnownIdentity,
  ProfileSource,
  SignInProfile,
  Step,
} from './profileSource';
import { workspaceRefusal } from './workspaces';

/**
 * The profile source of `workspaceMembershipSource: catalog`: the workspace
 * check is answered from the org import's Groups (src/catalogMembership.ts)
 * and goes to Bitbucket, as {@link ProfileSource} asks it, only on a miss.
 *
 * A sign-in asks `GET /2.0/user` and `GET /2.0/user/emails` at once, asks
 * the catalog as soon as the user's uuid is known (while the emails are in
 * flight), and starts the workspace calls only on a miss. A refresh asks the
 * catalog whenever it would serve a session, whatever `profileCacheTtl`
 * says; Bitbucket's workspace calls follow `profileCacheTtl` on a miss.
 */
export class CatalogFirstProfileSource extends ProfileSource {
  readonly #client: BitbucketClient;
  readonly #catalog: CatalogMembership;
  readonly #settings: BitbucketProviderSettings;
  readonly #logger?: LoggerService;

  constructor(options: {
    client: BitbucketClient;
    settings: BitbucketProviderSettings;
    catalog: CatalogMembership;
    logger?: LoggerService;
  }) {
    super(options);
    this.#client = options.client;
    this.#catalog = options.catalog;
    this.#settings = options.settings;
    this.#logger = options.logger;
  }

  override async forSignIn(
    accessToken: string,
    deadline: Deadline,
  ): Promise<SignInProfile> {
    const { known, answer } = await this.#identifyAndAsk(accessToken, deadline);
    if (answer.kind === 'member') {
      const fetchedAt = Date.now();
      const profile = await this.#member(known, answer.workspaces, 'sign-in');
      return { profile, fetchedAt };
    }
    return super.forSignIn(accessToken, deadline, known);
  }

  override async full(
    accessToken: string,
    deadline: Deadline,
    step: Step,
    context: FullContext = {},
  ): Promise<BitbucketProfile> {
    const { known, answer } = await this.#identifyAndAsk(
      accessToken,
      deadline,
      context.decidedAt,
    );
    if (answer.kind === 'member') {
      return this.#member(known, answer.workspaces, step);
    }
    if (answer.kind === 'refused') {
      const profile = toBitbucketProfile(known.user, await known.emails);
      this.#refuse(profile, step, answer.reason);
    }
    return super.full(accessToken, deadline, step, { ...context, known });
  }

  override async withoutBitbucket(
    cached: BitbucketProfile,
    decidedAt: number,
  ): Promise<BitbucketProfile | undefined> {
    const answer = await this.#catalog.answer({
      uuid: cached.uuid,
      decidedAt,
    });
    if (answer.kind === 'refused')
      this.#refuse(cached, 'refresh', answer.reason);
    if (answer.kind === 'miss') return undefined;
    const profile = { ...cached, workspaces: answer.workspaces };
    this.check(profile, 'refresh');
    return profile;
  }

  /**
   * `GET /2.0/user` and `GET /2.0/user/emails` at once; the catalog is asked
   * as soon as the user answers, while the emails are in flight.
   */
  async #identifyAndAsk(
    accessToken: string,
    deadline: Deadline,
    decidedAt?: number,
  ): Promise<{ known: KnownIdentity; answer: CatalogAnswer }> {
    const emails = this.#client.listEmails(accessToken, deadline);
    // awaited below or by the Bitbucket path; never an unhandled rejection
    emails.catch(() => undefined);
    const user = await this.#client.getCurrentUser(accessToken, deadline);
    const uuid = (user as { uuid?: unknown } | undefined)?.uuid;
    const answer: CatalogAnswer =
      typeof uuid === 'string'
        ? await this.#catalog.answer({ uuid, decidedAt })
        : { kind: 'miss', reason: 'no uuid in GET /2.0/user' };
    if (answer.kind === 'miss') {
      this.#logger?.debug(
        `Bitbucket workspace check asks Bitbucket: ${answer.reason}`,
      );
    }
    return { known: { user, emails }, answer };
  }

  async #member(
    known: KnownIdentity,
    workspaces: BitbucketProfile['workspaces'],
    step: Step,
  ): Promise<BitbucketProfile> {
    const profile = {
      ...toBitbucketProfile(known.user, await known.emails),
      workspaces,
    };
    this.check(profile, step);
    return profile;
  }

  /** Refuses as the Bitbucket check would, with the catalog's reason in the audit line. */
  #refuse(profile: BitbucketProfile, step: Step, reason: string): never {
    const refusal = workspaceRefusal(
      { ...profile, workspaces: [] },
      this.#settings.workspaces,
    );
    return this.refuse(profile, step, {
      userMessage: refusal!.userMessage,
      auditReason: `catalog: ${reason}`,
    });
  }
}
