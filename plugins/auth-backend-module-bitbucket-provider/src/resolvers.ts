import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import { ConflictError, InputError, NotFoundError } from '@backstage/errors';
import {
  AuthResolverContext,
  BackstageSignInResult,
  createSignInResolverFactory,
  OAuthAuthenticatorResult,
  SignInInfo,
} from '@backstage/plugin-auth-node';
import { z } from 'zod/v3';
import { withAuditDetail } from './audit';
import { BitbucketProfile, normalizeUuid } from './profile';

/** Annotation holding the Bitbucket account uuid, with or without braces. */
export const USER_ID_ANNOTATION = 'bitbucket.org/user-id';
/** Annotation holding the (GDPR-deprecated) Bitbucket username. */
export const USERNAME_ANNOTATION = 'bitbucket.org/username';
/** Annotation holding the Atlassian account id. */
export const ACCOUNT_ID_ANNOTATION = 'bitbucket.org/account-id';

type Info = SignInInfo<OAuthAuthenticatorResult<BitbucketProfile>>;

// strict: a misspelt option is an error, never silently ignored
const dangerousOption = z
  .object({
    dangerouslyAllowSignInWithoutUserInCatalog: z.boolean().optional(),
  })
  .strict();

const emailOptions = dangerousOption
  .extend({
    allowedDomains: z.array(z.string().min(1)).optional(),
  })
  .strict();

/**
 * The entity name of an account signed in by
 * `dangerouslyAllowSignInWithoutUserInCatalog`: its uuid without braces, in
 * lower case (`{3F1C…}` → `3f1c…`). It depends on the account alone, so
 * two accounts never share it and it never changes; it is also the name the
 * catalog module `bitbucket-cloud-org` gives the account's User.
 */
export function fallbackEntityName(uuid: string): string {
  return normalizeUuid(uuid);
}

/** The annotations that bind a User to exactly one Bitbucket account. */
const BINDING_ANNOTATIONS = [
  {
    annotation: USER_ID_ANNOTATION,
    same: (value: string, p: BitbucketProfile) =>
      normalizeUuid(value) === normalizeUuid(p.uuid),
  },
  {
    annotation: ACCOUNT_ID_ANNOTATION,
    same: (value: string, p: BitbucketProfile) =>
      value.trim().toLowerCase() === p.accountId.toLowerCase(),
  },
];

/**
 * Whether the User is bound to this account (`mine`), to another one
 * (`other`, with the annotation that says so), or to none (`unbound`).
 */
function binding(
  entity: Entity,
  profile: BitbucketProfile,
): { to: 'mine' | 'unbound' } | { to: 'other'; annotation: string } {
  let bound = false;
  for (const { annotation, same } of BINDING_ANNOTATIONS) {
    const value = entity.metadata.annotations?.[annotation];
    if (value === undefined) continue;
    if (!same(value, profile)) return { to: 'other', annotation };
    bound = true;
  }
  return { to: bound ? 'mine' : 'unbound' };
}

/**
 * Issues the identity of a matched User. A User annotated with a Bitbucket
 * user id or account id belongs to that account only: whatever else
 * matched (a username, which Bitbucket hands to anyone once it is free, an
 * email that two accounts confirmed, an entity name), another account never
 * signs in as it.
 */
async function issueForEntity(
  entity: Entity,
  info: Info,
  ctx: AuthResolverContext,
): Promise<BackstageSignInResult> {
  const bound = binding(entity, info.result.fullProfile);
  if (bound.to === 'other') {
    // the entity is not named: the message reaches the user who signs in
    throw withAuditDetail(
      new NotFoundError(
        `the matching User belongs to another Bitbucket account (its annotation ${bound.annotation} names another account)`,
      ),
      `the matching User ${stringifyEntityRef(
        entity,
      )} belongs to another Bitbucket account (its annotation ${
        bound.annotation
      } names another account)`,
    );
  }
  const { ownershipEntityRefs } = await ctx.resolveOwnershipEntityRefs(entity);
  return ctx.issueToken({
    claims: { sub: stringifyEntityRef(entity), ent: ownershipEntityRefs },
  });
}

/**
 * The `dangerouslyAllowSignInWithoutUserInCatalog` identity:
 * `user:default/<uuid>`, with no groups. When a User of that name exists,
 * it is used only if it is bound to this account; a User of another
 * account, or of none, is never handed out (and not named to the user).
 */
async function issueWithoutCatalog(
  info: Info,
  ctx: AuthResolverContext,
): Promise<BackstageSignInResult> {
  const ref = stringifyEntityRef({
    kind: 'User',
    namespace: 'default',
    name: fallbackEntityName(info.result.fullProfile.uuid),
  });
  const existing = await ctx.findCatalogUser({ entityRef: ref }).then(
    found => found.entity,
    error => {
      if ((error as Error)?.name === 'NotFoundError') return undefined;
      throw error;
    },
  );
  if (!existing) return ctx.issueToken({ claims: { sub: ref, ent: [ref] } });
  const bound = binding(existing, info.result.fullProfile);
  if (bound.to === 'mine') return issueForEntity(existing, info, ctx);
  const whose =
    bound.to === 'other'
      ? 'belongs to another account'
      : 'did not match this account';
  throw withAuditDetail(
    new NotFoundError(
      `dangerouslyAllowSignInWithoutUserInCatalog would sign in as an existing catalog User that ${whose}`,
    ),
    `dangerouslyAllowSignInWithoutUserInCatalog would sign in as the existing catalog User ${ref}, which ${whose}`,
  );
}

/**
 * Finds the single User whose `field` equals one of `values` (the catalog
 * compares case-insensitively), then checks the match exactly with `same`,
 * so that a loose catalog match never signs in the wrong user.
 */
async function findUser(
  ctx: AuthResolverContext,
  field: string,
  values: string[],
  read: (entity: Entity) => string | undefined,
  same: (found: string) => boolean,
  describe: string,
): Promise<Entity | undefined> {
  let entity: Entity;
  try {
    ({ entity } = await ctx.findCatalogUser({
      filter: { [field]: values },
    }));
  } catch (error) {
    if ((error as Error)?.name === 'NotFoundError') return undefined;
    if ((error as Error)?.name === 'ConflictError') {
      throw new ConflictError(
        `More than one catalog User has ${describe}; make it unique so that sign-in is unambiguous.`,
      );
    }
    throw error;
  }
  const found = read(entity);
  return found !== undefined && same(found) ? entity : undefined;
}

function checkDomain(
  email: string,
  allowedDomains: string[] | undefined,
): void {
  if (!allowedDomains) return;
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  if (!allowedDomains.some(d => d.toLowerCase() === domain)) {
    throw withAuditDetail(
      new NotFoundError(
        `the email domain '${domain}' is not one of allowedDomains; sign in with an account whose primary email is at your organisation's domain`,
      ),
      `the email domain '${domain}' is not one of allowedDomains (${allowedDomains.join(
        ', ',
      )})`,
    );
  }
}

function requireEmail(info: Info): string {
  const { email, emails } = info.result.fullProfile;
  if (email) return email;
  const hint = emails.length
    ? 'none of its addresses is both primary and confirmed'
    : 'it has no email address';
  throw new NotFoundError(
    `the Bitbucket account has no confirmed primary email address (${hint}); confirm the address and make it primary at https://bitbucket.org/account/settings/email/`,
  );
}

/**
 * The shared step of the annotation resolvers: the User whose `annotation`
 * matches one of `values` (checked exactly with `same`), else the dangerous
 * fallback when allowed, else not found.
 */
async function signInByAnnotation(
  info: Info,
  ctx: AuthResolverContext,
  allowWithoutCatalog: boolean | undefined,
  match: {
    annotation: string;
    values: string[];
    same: (found: string) => boolean;
    shown: string;
  },
): Promise<BackstageSignInResult> {
  const { annotation, values, same, shown } = match;
  const entity = await findUser(
    ctx,
    `metadata.annotations.${annotation}`,
    values,
    e => e.metadata.annotations?.[annotation],
    same,
    `the annotation ${annotation}: '${shown}'`,
  );
  if (entity) return issueForEntity(entity, info, ctx);
  if (allowWithoutCatalog) return issueWithoutCatalog(info, ctx);
  throw new NotFoundError(
    `no User has the annotation ${annotation}: '${shown}'`,
  );
}

/**
 * Sign-in resolvers for Bitbucket Cloud. Each one is listed by name under
 * `auth.providers.bitbucket.<env>.signIn.resolvers`; a resolver that finds
 * no user lets the next one try.
 *
 * @public
 */
export namespace bitbucketSignInResolvers {
  /**
   * Matches the annotation `bitbucket.org/user-id` to the account uuid,
   * written with or without braces, in any letter case.
   */
  export const userIdMatchingUserEntityAnnotation = createSignInResolverFactory(
    {
      optionsSchema: dangerousOption.optional(),
      create(options = {}) {
        return async (info: Info, ctx) => {
          const { uuid } = info.result.fullProfile;
          const id = normalizeUuid(uuid);
          return signInByAnnotation(
            info,
            ctx,
            options.dangerouslyAllowSignInWithoutUserInCatalog,
            {
              annotation: USER_ID_ANNOTATION,
              values: [`{${id}}`, id],
              same: found => normalizeUuid(found) === id,
              shown: uuid,
            },
          );
        };
      },
    },
  );

  /**
   * Matches the annotation `bitbucket.org/username` to the account's
   * username. Bitbucket omits usernames for many accounts (GDPR); prefer
   * the user id or account id.
   */
  export const usernameMatchingUserEntityAnnotation =
    createSignInResolverFactory({
      optionsSchema: dangerousOption.optional(),
      create(options = {}) {
        return async (info: Info, ctx) => {
          const { username } = info.result.fullProfile;
          if (!username) {
            throw new NotFoundError(
              `Bitbucket returned no username for this account (usernames are deprecated since 2019); use userIdMatchingUserEntityAnnotation or accountIdMatchingUserEntityAnnotation`,
            );
          }
          return signInByAnnotation(
            info,
            ctx,
            options.dangerouslyAllowSignInWithoutUserInCatalog,
            {
              annotation: USERNAME_ANNOTATION,
              values: [username],
              same: found => found === username,
              shown: username,
            },
          );
        };
      },
    });

  /** Matches the annotation `bitbucket.org/account-id` to the Atlassian account id. */
  export const accountIdMatchingUserEntityAnnotation =
    createSignInResolverFactory({
      optionsSchema: dangerousOption.optional(),
      create(options = {}) {
        return async (info: Info, ctx) => {
          const { accountId } = info.result.fullProfile;
          return signInByAnnotation(
            info,
            ctx,
            options.dangerouslyAllowSignInWithoutUserInCatalog,
            {
              annotation: ACCOUNT_ID_ANNOTATION,
              values: [accountId],
              same: found => found === accountId,
              shown: accountId,
            },
          );
        };
      },
    });

  /**
   * Matches `spec.profile.email` to the account's primary and confirmed
   * email address (never an unconfirmed one).
   */
  export const emailMatchingUserEntityProfileEmail =
    createSignInResolverFactory({
      optionsSchema: emailOptions.optional(),
      create(options = {}) {
        return async (info: Info, ctx) => {
          const email = requireEmail(info);
          checkDomain(email, options.allowedDomains);
          const entity = await findUser(
            ctx,
            'spec.profile.email',
            [email],
            e => (e.spec as any)?.profile?.email,
            found => found.toLowerCase() === email.toLowerCase(),
            `spec.profile.email '${email}'`,
          );
          if (entity) return issueForEntity(entity, info, ctx);
          if (options.dangerouslyAllowSignInWithoutUserInCatalog) {
            return issueWithoutCatalog(info, ctx);
          }
          throw new NotFoundError(`no User has spec.profile.email '${email}'`);
        };
      },
    });

  /**
   * Matches the entity name to the local part of the account's primary and
   * confirmed email address (`jane.doe@example.com` → `user:default/jane.doe`).
   */
  export const emailLocalPartMatchingUserEntityName =
    createSignInResolverFactory({
      optionsSchema: emailOptions.optional(),
      create(options = {}) {
        if (!options.allowedDomains?.length) {
          throw new InputError(
            'emailLocalPartMatchingUserEntityName needs allowedDomains: without it, anyone who confirms an address such as jane.doe@attacker.example on a Bitbucket account signs in as user:default/jane.doe. List the email domains your organisation owns, e.g. allowedDomains: [example.com].',
          );
        }
        return async (info: Info, ctx) => {
          const email = requireEmail(info);
          checkDomain(email, options.allowedDomains);
          const localPart = email.slice(0, email.lastIndexOf('@'));
          const entity = await ctx
            .findCatalogUser({ entityRef: { kind: 'User', name: localPart } })
            .then(
              found => found.entity,
              error => {
                if ((error as Error)?.name !== 'NotFoundError') throw error;
                return undefined;
              },
            );
          if (entity) return issueForEntity(entity, info, ctx);
          if (options.dangerouslyAllowSignInWithoutUserInCatalog) {
            return issueWithoutCatalog(info, ctx);
          }
          throw new NotFoundError(
            `no User is named '${localPart}' (the local part of ${email})`,
          );
        };
      },
    });
}
