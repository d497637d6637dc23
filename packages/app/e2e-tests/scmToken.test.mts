/**
 * End-to-end: the signed-in user's Bitbucket token for other plugins, through
 * the app's scmAuthApiRef (the page /bitbucket-token asks for it as the
 * scaffolder or catalog import do), in Debian's Chromium against the portal
 * and the emulator. The emulator's access tokens live 60 s here, so that every
 * refresh of the session rotates the refresh token (the module serves a
 * refresh from its cache only while the token has over 5 minutes to live).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, expect, type Page } from './browser.mts';
import { IMPORTED, type Portal, REPO_ROOT, startPortal } from './portal.mts';
import { SignInPage } from './SignInPage.mts';

const SHOTS = join(REPO_ROOT, 'packages/app/e2e-test-results');
mkdirSync(SHOTS, { recursive: true });

/**
 * ScmAuth.forBitbucket's scopes (integration-react), and the sign-in's (the
 * demo's workspace check adds `team`).
 */
const SIGN_IN = ['account', 'email', 'team'];
const READ = ['account', 'team', 'pullrequest', 'snippet', 'issue', 'project'];
const WRITE = ['pullrequest:write', 'snippet:write', 'issue:write'];

let portal: Portal;
let browser: Browser;

before(async () => {
  portal = await startPortal({ accessTokenTtlSeconds: 60 });
  browser = await chromium();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

interface Call {
  method: string;
  path: string;
  query: string;
  status: number;
  grantType?: string;
}

async function calls(): Promise<Call[]> {
  return (await fetch(`${portal.emulatorUrl}/_emulator/calls`)).json();
}

async function resetCalls() {
  await fetch(`${portal.emulatorUrl}/_emulator/calls`, { method: 'DELETE' });
}

/** The scopes each authorize request asked for, in order. */
function authorizeScopes(list: Call[]): string[][] {
  return list
    .filter(c => c.method === 'GET' && c.path === '/site/oauth2/authorize')
    .map(c => (new URLSearchParams(c.query).get('scope') ?? '').split(' '));
}

const sorted = (scopes: Iterable<string>) => [...new Set(scopes)].sort();

async function grantedScope(page: Page): Promise<string[]> {
  const el = page.getByTestId('granted-scope');
  await expect(el).toBeVisible();
  // wait for the answer of the auth backend
  for (let i = 0; i < 100; i++) {
    const text = ((await el.textContent()) ?? '').trim();
    if (text !== '…') return text.split(' ').sort();
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('the page never showed the granted scopes');
}

/**
 * Clicks `button`, then "Log in" in Backstage's "Login Required" dialog, and
 * returns the emulator's page in the popup it opened.
 */
async function askThroughDialog(page: Page, button: string): Promise<Page> {
  await page.getByRole('button', { name: button }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Login Required');
  const [popup] = await Promise.all([
    page.waitForEvent('popup'),
    dialog.getByRole('button', { name: 'Log in' }).click(),
  ]);
  await popup.waitForLoadState();
  return popup;
}

/** The scopes the emulator's consent page lists as new. */
async function consentScopes(popup: Page): Promise<string[]> {
  const lists = popup.locator('ul.scopes');
  await expect(lists.first()).toBeVisible();
  return (await lists.first().locator('code').allTextContents()).sort();
}

describe('The Bitbucket token for other plugins (scmAuthApiRef)', () => {
  test('asks only for the missing scopes, keeps them across reloads and rotations, adds :write for writes, and names a missing consumer permission', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(portal.url);
    const signIn = new SignInPage(page);
    await expect(signIn.signInButton()).toBeVisible();

    // 1. sign in: the consent page shows the sign-in's scopes
    const answer = await signIn.signInAs('Jane Doe (jdoe)');
    assert.equal(
      answer.response?.backstageIdentity?.identity.userEntityRef,
      IMPORTED.jane,
    );
    await page.goto(`${portal.url}/bitbucket-token`);
    assert.deepEqual(await grantedScope(page), sorted(SIGN_IN));

    // 2. a read token: Backstage asks to log in, Bitbucket asks only for
    //    the scopes not granted yet, with Jane's account already chosen
    await resetCalls();
    const readPopup = await askThroughDialog(page, 'Ask for a read token');
    assert.deepEqual(
      await consentScopes(readPopup),
      sorted(READ.filter(s => !SIGN_IN.includes(s))),
    );
    assert.ok(
      await readPopup
        .getByRole('radio', { name: 'Jane Doe (jdoe)', exact: true })
        .isChecked(),
      "Jane's account is chosen",
    );
    await readPopup.screenshot({ path: join(SHOTS, 'scm-consent-read.png') });
    await readPopup.getByRole('button', { name: 'Grant access' }).click();
    await readPopup.waitForEvent('close', { timeout: 30_000 });
    await expect(page.getByRole('status')).toContainText('read token received');
    assert.deepEqual(await grantedScope(page), sorted([...SIGN_IN, ...READ]));
    // the backend asked Bitbucket for the union: what was granted and what is new
    assert.deepEqual(authorizeScopes(await calls()).map(sorted), [
      sorted([...SIGN_IN, ...READ]),
    ]);

    // 3. reload: the wider scope stays, without a prompt; the 60 s tokens
    //    make each refresh rotate the refresh token
    await resetCalls();
    await page.reload();
    assert.deepEqual(await grantedScope(page), sorted([...SIGN_IN, ...READ]));
    await page.getByRole('button', { name: 'Ask for a read token' }).click();
    await expect(page.getByRole('status')).toContainText('read token received');
    assert.equal(await page.getByRole('dialog').count(), 0, 'no prompt');
    const afterReload = await calls();
    assert.deepEqual(authorizeScopes(afterReload), [], 'no consent');
    const rotations = afterReload.filter(
      c => c.grantType === 'refresh_token' && c.status === 200,
    );
    assert.ok(
      rotations.length >= 1,
      `the refresh token rotated (${rotations.length} refreshes)`,
    );
    assert.equal(
      afterReload.filter(c => c.path === '/site/oauth2/access_token').length,
      rotations.length,
      'every token call was a successful refresh',
    );
    await page.screenshot({ path: join(SHOTS, 'scm-after-reload.png') });

    // 4. a write token: Bitbucket asks only for the :write scopes
    await resetCalls();
    const writePopup = await askThroughDialog(page, 'Ask for a write token');
    assert.deepEqual(await consentScopes(writePopup), sorted(WRITE));
    await writePopup.getByRole('button', { name: 'Grant access' }).click();
    await writePopup.waitForEvent('close', { timeout: 30_000 });
    await expect(page.getByRole('status')).toContainText(
      'write token received',
    );
    assert.deepEqual(
      await grantedScope(page),
      sorted([...SIGN_IN, ...READ, ...WRITE]),
    );

    // 5. a scope the consumer lacks: the dialog names the permission to add
    await resetCalls();
    const pipelinesPopup = await askThroughDialog(
      page,
      'Ask for a Pipelines token',
    );
    await pipelinesPopup
      .waitForEvent('close', { timeout: 30_000 })
      .catch(() => undefined);
    await expect(page.getByRole('dialog')).toContainText(
      'The Bitbucket OAuth consumer lacks a permission this portal requests: tick "Pipelines: Read" in Bitbucket under Workspace settings > OAuth consumers > Edit',
    );
    await page.screenshot({ path: join(SHOTS, 'scm-missing-permission.png') });
    const refused = await calls();
    assert.deepEqual(
      refused
        .filter(c => c.path === '/site/oauth2/authorize')
        .map(c => c.status),
      [302],
      'one authorize request, redirected back with an error',
    );
    await page
      .getByRole('dialog')
      .getByRole('button', { name: 'Reject All' })
      .click();
    await expect(page.getByRole('alert')).toBeVisible();
    // what was granted before stays
    assert.deepEqual(
      await grantedScope(page),
      sorted([...SIGN_IN, ...READ, ...WRITE]),
    );
    await context.close();
  });
});
