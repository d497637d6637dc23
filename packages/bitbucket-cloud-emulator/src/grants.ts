import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { EmulatorState } from './state';

/** The emulator's browser session cookie: who is signed in to "Bitbucket". */
export const SESSION_COOKIE = 'bitbucket_session';
const SESSION_PATH = '/site/oauth2';

/**
 * What each user granted each consumer, and which browser is signed in as
 * whom. Bitbucket shows its permission screen the first time a user
 * authorizes a consumer and again only when the consumer asks for more
 * ("If this is your first time authorizing this consumer, clicking on
 * 'Authorize' will redirect you to a permission screen", Atlassian's OAuth
 * sample); a browser signed in to Bitbucket is not asked who it is.
 */
export class RememberedGrants {
  /** session id → user uuid */
  private readonly sessions = new Map<string, string>();
  /** `${userUuid} ${consumerKey}` → scopes granted so far */
  private readonly granted = new Map<string, Set<string>>();

  /** The user the browser of `req` is signed in as, if any. */
  sessionUser(req: IncomingMessage): string | undefined {
    const id = readCookie(req, SESSION_COOKIE);
    return id ? this.sessions.get(id) : undefined;
  }

  /** The scopes of `requested` that `user` has not granted `consumer` yet. */
  missing(user: string, consumer: string, requested: string[]): string[] {
    const had = this.granted.get(`${user} ${consumer}`);
    return requested.filter(s => !had?.has(s));
  }

  /** The scopes `user` granted `consumer` so far. */
  grantedScopes(user: string, consumer: string): string[] {
    return [...(this.granted.get(`${user} ${consumer}`) ?? [])];
  }

  /**
   * Remembers a grant; returns the `Set-Cookie` value that signs the browser
   * in as `user` (a new session when it was not already signed in as them).
   */
  remember(
    req: IncomingMessage,
    user: string,
    consumer: string,
    scopes: string[],
  ): string {
    const key = `${user} ${consumer}`;
    const had = this.granted.get(key) ?? new Set<string>();
    for (const s of scopes) had.add(s);
    this.granted.set(key, had);
    let id = readCookie(req, SESSION_COOKIE);
    if (!id || this.sessions.get(id) !== user) {
      id = randomBytes(24).toString('base64url');
    }
    this.sessions.set(id, user);
    return `${SESSION_COOKIE}=${id}; Path=${SESSION_PATH}; HttpOnly; SameSite=Lax`;
  }
}

const memories = new WeakMap<EmulatorState, RememberedGrants>();

/** The remembered grants of an emulator (one per {@link EmulatorState}). */
export function rememberedGrants(state: EmulatorState): RememberedGrants {
  let memory = memories.get(state);
  if (!memory) {
    memory = new RememberedGrants();
    memories.set(state, memory);
  }
  return memory;
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
