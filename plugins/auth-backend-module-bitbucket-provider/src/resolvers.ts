import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import { ConflictError, NotFoundError } from '@backstage/errors';
import {
  AuthResolverContext,
  BackstageSignInResult,
  createSignInResolverFactory,
  OAuthAuthenticatorResult,
  SignInInfo,
} from '@backstage/plugin-auth-node';
import { z } from 'zod/v3';
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
 * A valid entity name from an identifier that may contain braces, `@`, `:`
 * or other characters entity names do not allow.
 */
export function toEntityName(raw: string): string {
  const name = raw
    .trim()
    .replace(/^\{|\}$/g, '')
    .replace(/[^a-zA-Z0-9_.-]+/g, '-')
    .replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '')
    .slice(0, 63)
    .replace(/[^a-zA-Z0-9]+$/, '');
  return name.toLowerCase();
}

/**
 * Issues the identity of a matched User. A User annotated with a Bitbucket
 * user id belongs to that account only: whatever else matched (a username,
 * which Bitbucket hands to anyone once it is free, an email, an entity
 * name), another account never signs in as it.
 */
async function issueForEntity(
  entity: Entity,
  info: Info,
  ctx: AuthResolverContext,
): Promise<BackstageSignInResult> {
  const boundTo = entity.metadata.annotations?.[USER_ID_ANNOTATION];
  if (
    boundTo !== undefined &&
    normalizeUuid(boundTo) !== normalizeUuid(info.result.fullProfile.uuid)
  ) {
    // the entity is not named: the message reaches the user who signs in
    throw new NotFoundError(
      `the matching User belongs to another Bitbucket account (its annotation ${USER_ID_ANNOTATION} names another account)`,
    );
  }
  const { ownershipEntityRefs } = await ctx.resolveOwnershipEntityRefs(entity);
  return ctx.issueToken({
    claims: { sub: stringifyEntityRef(entity), ent: ownershipEntityRefs },
  });
}

/**
 * The `dangerouslyAllowSignInWithoutUserInCatalog` identity: a User ref
 * made from `name`, never the ref of an existing catalog User, which this
 * account did not match.
 */
async function issueWithoutCatalog(
  name: string,
  ctx: AuthResolverContext,
): Promise<BackstageSignInResult> {
  const ref = stringifyEntityRef({
    kind: 'User',
    namespace: 'default',
    name: toEntityName(name),
  });
  const exists = await ctx.findCatalogUser({ entityRef: ref }).then(
    () => true,
    error => {
      if ((error as Error)?.name === 'NotFoundError') return false;
      throw error;
    },
  );
  if (exists) {
    throw new NotFoundError(
      `dangerouslyAllowSignInWithoutUserInCatalog would sign in as an existing catalog User that did not match this account (${ref})`,
    );
  }
  return ctx.issueToken({ claims: { sub: ref, ent: [ref] } });
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
    throw new NotFoundError(
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
    fallbackName: string;
  },
): Promise<BackstageSignInResult> {
  const { annotation, values, same, shown, fallbackName } = match;
  const entity = await findUser(
    ctx,
    `metadata.annotations.${annotation}`,
    values,
    e => e.metadata.annotations?.[annotation],
    same,
    `the annotation ${annotation}: '${shown}'`,
  );
  if (entity) return issueForEntity(entity, info, ctx);
  if (allowWithoutCatalog) return issueWithoutCatalog(fallbackName, ctx);
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
              fallbackName: id,
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
              fallbackName: username,
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
              fallbackName: accountId,
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
            return issueWithoutCatalog(email, ctx);
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
            return issueWithoutCatalog(localPart, ctx);
          }
          throw new NotFoundError(
            `no User is named '${localPart}' (the local part of ${email})`,
          );
        };
      },
    });
}
