import { createHash } from 'node:crypto';
import { Exchange, send, sendHtml, sendText } from './http';
import { escapeHtml, renderIndexPage, renderProfilePage } from './html';
import { avatarUrl } from './rest';
import type { SeedUser } from './seed';
import type { EmulatorState } from './state';

const AVATAR_PATH = /^\/account\/([0-9a-f-]{36})\/avatar\.svg$/i;
const PROFILE_PATH = /^\/(%7B[0-9a-f-]{36}%7D|\{[0-9a-f-]{36}\})\/?$/i;
const COLOURS = [
  '#0052cc',
  '#00875a',
  '#de350b',
  '#5243aa',
  '#ff991f',
  '#00a3bf',
];

/**
 * The pages of the bitbucket.org site that links in API answers point at:
 * avatars, profile pages, and an index at `/`. Returns false when the path is
 * not one of them.
 */
export function handleSite(ex: Exchange, state: EmulatorState): boolean {
  const path = ex.url.pathname;
  if (path === '/') {
    sendHtml(ex, 200, renderIndexPage(state.consumers(), state.users().length));
    return true;
  }
  const avatar = AVATAR_PATH.exec(path);
  if (avatar) {
    const user = findUser(state, `{${avatar[1]}}`);
    if (user) {
      send(
        ex,
        200,
        {
          'content-type': 'image/svg+xml',
          'cache-control': 'public, max-age=3600',
        },
        avatarSvg(user),
      );
    } else {
      sendText(ex, 404, 'No such avatar.');
    }
    return true;
  }
  const profile = PROFILE_PATH.exec(path);
  if (profile) {
    const user = findUser(state, decodeURIComponent(profile[1]));
    if (user) {
      sendHtml(ex, 200, renderProfilePage(user, avatarUrl(ex.origin, user)));
    } else {
      sendText(ex, 404, 'No such account.');
    }
    return true;
  }
  return false;
}

/** A 128×128 SVG avatar with the user's initials on a colour picked from the uuid. */
export function avatarSvg(user: SeedUser): string {
  const initials = user.displayName
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map(word => word[0].toUpperCase())
    .join('');
  const colour =
    COLOURS[
      createHash('sha256').update(user.uuid).digest()[0] % COLOURS.length
    ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128" role="img" aria-label="${escapeHtml(
    user.displayName,
  )}"><circle cx="64" cy="64" r="64" fill="${colour}"/><text x="64" y="64" dy=".35em" text-anchor="middle" font-family="system-ui, sans-serif" font-size="52" fill="#fff">${escapeHtml(
    initials,
  )}</text></svg>`;
}

function findUser(state: EmulatorState, uuid: string): SeedUser | undefined {
  const wanted = uuid.toLowerCase();
  return state.users().find(u => u.uuid.toLowerCase() === wanted);
}
