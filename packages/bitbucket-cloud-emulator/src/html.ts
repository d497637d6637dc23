import type { SeedConsumer, SeedUser } from './seed';

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  account: 'Read your account information',
  'account:write': 'Update your account information',
  email: 'Read your email addresses',
  team: 'Read your workspace membership',
  'team:write': 'Administer your workspace membership',
  repository: 'Read your repositories',
  'repository:write': 'Read and modify your repositories',
  'repository:admin': 'Administer your repositories',
  'repository:delete': 'Delete your repositories',
  pullrequest: 'Read your pull requests',
  'pullrequest:write': 'Read and modify your pull requests',
  project: 'Read your projects',
  'project:admin': 'Administer your projects',
  snippet: 'Read your snippets',
  'snippet:write': 'Read and modify your snippets',
  issue: 'Read your issues',
  'issue:write': 'Read and modify your issues',
  wiki: 'Read and write your wikis',
  webhook: 'Read and modify your webhooks',
  pipeline: 'Read your pipelines',
  'pipeline:write': 'Run your pipelines',
  'pipeline:variable': 'Manage your pipeline variables',
  runner: 'Read your runners',
  'runner:write': 'Manage your runners',
};

const STYLE = `
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f5f7; color: #172b4d; margin: 0; }
  main { max-width: 30rem; margin: 3rem auto; background: #fff; border-radius: 6px; padding: 2rem; box-shadow: 0 1px 3px rgba(9,30,66,.25); }
  h1 { font-size: 1.4rem; margin-top: 0; }
  ul.scopes { padding-left: 1.2rem; }
  code { background: #f4f5f7; padding: 0 .25rem; border-radius: 3px; }
  fieldset { border: 1px solid #dfe1e6; border-radius: 4px; margin: 1rem 0; padding: .5rem 1rem; }
  .account { display: flex; align-items: baseline; gap: .5rem; padding: .35rem 0; }
  .account small { display: block; color: #5e6c84; }
  .actions { display: flex; gap: .75rem; }
  button { font: inherit; padding: .45rem 1rem; border-radius: 3px; border: 1px solid #c1c7d0; background: #f4f5f7; cursor: pointer; }
  button[value=grant] { background: #0052cc; border-color: #0052cc; color: #fff; }
  .note { color: #5e6c84; font-size: .85rem; }
  footer { color: #5e6c84; font-size: .8rem; margin-top: 1.5rem; }
`;

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title: string, content: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${content}
<footer>Bitbucket Cloud emulator: a local stand-in, not bitbucket.org.</footer>
</main>
</body>
</html>
`;
}

/** An error page shown instead of a redirect (the client cannot be trusted with one). */
export function renderErrorPage(
  heading: string,
  message: string,
  note?: string,
): string {
  return page(
    `${heading} | Bitbucket Cloud emulator`,
    `<h1>${escapeHtml(heading)}</h1>
<p class="error">${escapeHtml(message)}</p>${
      note ? `\n<p class="note">${escapeHtml(note)}</p>` : ''
    }`,
  );
}

/**
 * The consent page: who is asking, for which scopes, and as which account.
 * For a browser signed in as a user who granted the consumer some of the
 * scopes before (`alreadyGranted`), it lists only the new ones and has that
 * account (`chosen`) selected.
 */
export function renderConsentPage(options: {
  consumer: SeedConsumer;
  scopes: string[];
  users: SeedUser[];
  action: string;
  hidden: Record<string, string>;
  alreadyGranted?: string[];
  chosen?: string;
}): string {
  const { consumer, scopes, users, action, hidden, alreadyGranted, chosen } =
    options;
  const key = escapeHtml(consumer.key);
  const items = (list: string[]) =>
    list
      .map(
        s =>
          `<li>${escapeHtml(SCOPE_DESCRIPTIONS[s] ?? s)} <code>${escapeHtml(
            s,
          )}</code></li>`,
      )
      .join('\n');
  const scopeItems = items(scopes);
  const more = alreadyGranted !== undefined && alreadyGranted.length > 0;
  const hiddenInputs = Object.entries(hidden)
    .map(
      ([name, value]) =>
        `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(
          value,
        )}">`,
    )
    .join('\n');
  const accounts = users
    .map((user, i) => {
      const primary = user.emails.find(e => e.primary) ?? user.emails[0];
      const detail = primary
        ? `${primary.email}${primary.confirmed ? '' : ' (unconfirmed)'}`
        : 'no email address';
      return `<div class="account">
<input type="radio" id="account-${i}" name="account" value="${escapeHtml(
        user.uuid,
      )}" aria-describedby="account-${i}-detail"${
        user.uuid === chosen ? ' checked' : ''
      } required>
<div><label for="account-${i}">${escapeHtml(user.displayName)} (${escapeHtml(
        user.nickname,
      )})</label>
<small id="account-${i}-detail">${escapeHtml(detail)}</small></div>
</div>`;
    })
    .join('\n');
  const accountChooser =
    users.length > 0
      ? `<fieldset>
<legend>Continue as</legend>
${accounts}
</fieldset>`
      : `<p class="note">The emulator's seed has no users, so access can only be cancelled.</p>`;

  return page(
    `Authorize ${consumer.key} | Bitbucket Cloud emulator`,
    `<h1>Authorize ${key}</h1>
${
  more
    ? `<p><strong>${key}</strong> is requesting additional access to your Bitbucket Cloud account. It will also be able to:</p>`
    : `<p><strong>${key}</strong> is requesting access to your Bitbucket Cloud account. It will be able to:</p>`
}
<ul class="scopes">
${scopeItems || '<li>No permissions requested</li>'}
</ul>${
      more
        ? `\n<p>You granted before:</p>\n<ul class="scopes">\n${items(
            alreadyGranted,
          )}\n</ul>`
        : ''
    }
<form method="post" action="${escapeHtml(action)}">
${hiddenInputs}
${accountChooser}
<div class="actions">
<button type="submit" name="decision" value="grant">Grant access</button>
<button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>
</div>
</form>`,
  );
}

/** A minimal public profile page, the target of a user's `links.html`. */
export function renderProfilePage(user: SeedUser, avatarUrl: string): string {
  return page(
    `${user.displayName} | Bitbucket Cloud emulator`,
    `<h1><img src="${escapeHtml(
      avatarUrl,
    )}" alt="" width="48" height="48" style="vertical-align:middle;border-radius:50%"> ${escapeHtml(
      user.displayName,
    )}</h1>
<p>@${escapeHtml(user.nickname)}</p>`,
  );
}

/** The page at `/`, listing what the emulator serves. */
export function renderIndexPage(
  consumers: SeedConsumer[],
  userCount: number,
): string {
  const keys = consumers
    .map(c => `<code>${escapeHtml(c.key)}</code>`)
    .join(', ');
  return page(
    'Bitbucket Cloud emulator',
    `<h1>Bitbucket Cloud emulator</h1>
<p>Consumers: ${keys || 'none'}. Users: ${userCount}.</p>
<ul>
<li><code>GET /site/oauth2/authorize</code></li>
<li><code>POST /site/oauth2/access_token</code></li>
<li><code>GET /2.0/user</code>, <code>/2.0/user/emails</code>, <code>/2.0/user/workspaces</code>, <code>/2.0/user/workspaces/{workspace}/permission</code></li>
<li><code>/_emulator/health</code>, <code>/_emulator/calls</code>, <code>/_emulator/faults</code></li>
</ul>`,
  );
}
