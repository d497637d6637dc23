/**
 * End-to-end: a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against the portal and the Bitbucket Cloud emulator.
 * Screenshots of each end state go to packages/app/e2e-test-results/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Browser,
  type BrowserContext,
  chromium,
  expect,
  type Page,
} from './browser.mts';
import { IMPORTED, type Portal, REPO_ROOT, startPortal } from './portal.mts';
import { SignInPage } from './SignInPage.mts';

const SHOTS = join(REPO_ROOT, 'packages/app/e2e-test-results');
mkdirSync(SHOTS, { recursive: true });

let portal: Portal;
let browser: Browser;

before(async () => {
  // 50 ms per emulator answer: the two profile calls can only overlap if
  // they are made in parallel
  portal = await startPortal({ emulatorLatencyMs: 50 });
  browser = await chromium();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

async function open(): Promise<{
  context: BrowserContext;
  page: Page;
  signIn: SignInPage;
}> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(portal.url);
  const signIn = new SignInPage(page);
  await expect(signIn.signInButton()).toBeVisible();
  return { context, page, signIn };
}

describe('Sign in with Bitbucket', () => {
  test('signs in as the User the org provider imported, and shows the Bitbucket identity', async () => {
    const { context, page, signIn } = await open();
    await fetch(`${portal.emulatorUrl}/_emulator/calls`, { method: 'DELETE' });

    const answer = await signIn.signInAs('Jane Doe (jdoe)');
    const identity = answer.response?.backstageIdentity?.identity;
    assert.equal(identity?.userEntityRef, IMPORTED.jane);
    // memberOf of the imported User, and workspaceOwnership: the same groups
    assert.deepEqual([...(identity?.ownershipEntityRefs ?? [])].sort(), [
      'group:default/acme',
      'group:default/platform',
      IMPORTED.jane,
    ]);
    await expect(
      page.getByRole('link', { name: 'Catalog', exact: true }),
    ).toBeVisible();

    await page.goto(`${portal.url}/settings`);
    await expect(page.getByText('jane.doe@example.com')).toBeVisible();
    await expect(
      page.getByText('Jane Doe', { exact: true }).first(),
    ).toBeVisible();
    const avatar = page
      .locator(`img[src^="${portal.emulatorUrl}/account/"]`)
      .first();
    await expect(avatar).toBeVisible();
    assert.ok(
      await avatar.evaluate(
        (img: HTMLImageElement) => img.complete && img.naturalWidth > 0,
      ),
      'the avatar from links.avatar.href loaded',
    );
    await expect(page.getByText('Ownership Entities')).toBeVisible();
    // Jane's memberOf (examples/org.yaml): she owns what group:default/acme owns
    await expect(page.getByText('ACME Corp')).toBeVisible();
    await page.screenshot({ path: join(SHOTS, 'signed-in-settings.png') });

    const calls: { path: string; startedAt: number; endedAt: number }[] =
      await (await fetch(`${portal.emulatorUrl}/_emulator/calls`)).json();
    const user = calls.find(c => c.path === '/2.0/user');
    const emails = calls.find(c => c.path === '/2.0/user/emails');
    assert.ok(
      user && emails,
      'one sign-in fetched /2.0/user and /2.0/user/emails',
    );
    assert.ok(
      user.startedAt < emails.endedAt && emails.startedAt < user.endedAt,
      `requested concurrently: user ${user.startedAt}-${user.endedAt}, emails ${emails.startedAt}-${emails.endedAt}`,
    );
    // the workspace check was answered by the imported acme Group: the
    // sign-in and the settings page's refreshes asked Bitbucket only these
    assert.deepEqual(
      calls
        .filter(c => c.path.startsWith('/2.0/user'))
        .map(c => c.path)
        .sort(),
      ['/2.0/user', '/2.0/user/emails'],
    );
    await context.close();
  });

  test('a reload keeps the session, and sign-out returns to the sign-in page', async () => {
    const { context, page, signIn } = await open();
    const answer = await signIn.signInAs('Bob Builder (bob)');
    assert.equal(
      answer.response?.backstageIdentity?.identity.userEntityRef,
      IMPORTED.bob,
    );
    await expect(
      page.getByRole('link', { name: 'Catalog', exact: true }),
    ).toBeVisible();

    await page.reload();
    await expect(
      page.getByRole('link', { name: 'Catalog', exact: true }),
    ).toBeVisible();
    assert.equal(await signIn.signInButton().count(), 0);

    await page.goto(`${portal.url}/settings`);
    await expect(page.getByText('bob@example.com')).toBeVisible();
    await page.screenshot({ path: join(SHOTS, 'after-reload.png') });
    await page.getByRole('button', { name: 'more' }).first().click();
    await page.getByRole('menuitem', { name: 'Sign Out' }).click();
    await expect(signIn.signInButton()).toBeVisible();
    await page.screenshot({ path: join(SHOTS, 'signed-out.png') });

    // and stays signed out after a reload: the refresh cookie is gone
    await page.reload();
    await expect(signIn.signInButton()).toBeVisible();
    await context.close();
  });

  test('tabs opened together stay signed in (Bitbucket rotates refresh tokens)', async () => {
    const { context, page, signIn } = await open();
    const answer = await signIn.signInAs('Jane Doe (jdoe)');
    assert.equal(
      answer.response?.backstageIdentity?.identity.userEntityRef,
      IMPORTED.jane,
    );
    await expect(
      page.getByRole('link', { name: 'Catalog', exact: true }),
    ).toBeVisible();
    // a restored browser window: three tabs load at once, each restoring
    // the session with /refresh
    const tabs = await Promise.all(
      [1, 2, 3].map(async () => {
        const tab = await context.newPage();
        await tab.goto(portal.url);
        return tab;
      }),
    );
    for (const [i, tab] of tabs.entries()) {
      await expect(
        tab.getByRole('link', { name: 'Catalog', exact: true }),
      ).toBeVisible();
      assert.equal(
        await new SignInPage(tab).signInButton().count(),
        0,
        `tab ${i + 1} is signed in`,
      );
    }
    // and a reload of each afterwards still is
    await Promise.all(tabs.map(tab => tab.reload()));
    for (const tab of tabs) {
      await expect(
        tab.getByRole('link', { name: 'Catalog', exact: true }),
      ).toBeVisible();
    }
    await tabs[2].screenshot({ path: join(SHOTS, 'tabs-together.png') });
    await context.close();
  });

  test('a user missing from the catalog sees why', async () => {
    const { context, page, signIn } = await open();
    // a collaborator of "partners", which the org provider does not import,
    // and of "acme", whose import leaves collaborators out
    await fetch(`${portal.emulatorUrl}/_emulator/calls`, { method: 'DELETE' });
    const answer = await signIn.signInAs('Carol Contractor (carol)');
    assert.equal(answer.response, undefined);
    // a catalog miss: Bitbucket answered the workspace check
    const calls: { path: string }[] = await (
      await fetch(`${portal.emulatorUrl}/_emulator/calls`)
    ).json();
    assert.ok(
      calls.some(c => c.path.startsWith('/2.0/user/workspaces')),
      `Bitbucket was asked for Carol's workspaces: ${calls
        .map(c => c.path)
        .join(', ')}`,
    );
    assert.equal(answer.error?.name, 'NotFoundError');
    await expect(signIn.errorText()).toContainText(
      'Signed in to Bitbucket as Carol Contractor ({c27d5e93-0f6a-4b18-8e34-91b7a2c6d05f}), but no matching User was found in the Backstage catalog.',
    );
    await expect(signIn.errorText()).toContainText(
      "Ask your Backstage admin to add a User entity for this account, e.g. with the annotation bitbucket.org/user-id: '{c27d5e93-0f6a-4b18-8e34-91b7a2c6d05f}'.",
    );
    await page.screenshot({ path: join(SHOTS, 'not-in-catalog.png') });
    await context.close();
  });

  test('Cancel on the consent page shows a readable message', async () => {
    const { context, page, signIn } = await open();
    const answer = await signIn.signInAs('Jane Doe (jdoe)', 'Cancel');
    assert.equal(answer.response, undefined);
    await expect(signIn.errorText()).toHaveText(
      'Sign-in was cancelled: access to your Bitbucket account was not granted. To sign in, try again and choose "Grant access" on Bitbucket\'s page.',
    );
    await expect(signIn.signInButton()).toBeVisible();
    await page.screenshot({ path: join(SHOTS, 'cancelled.png') });
    await context.close();
  });

  test('an unconfirmed email never signs in as the catalog user who owns it', async () => {
    const { context, page, signIn } = await open();
    const answer = await signIn.signInAs('Mallory Unconfirmed (mallory)');
    assert.equal(answer.response, undefined);
    await expect(signIn.errorText()).toContainText(
      'Signed in to Bitbucket as Mallory Unconfirmed ({e5b03f7c-2a94-4d61-b7e8-3c0f9a1d6e27}), but no matching User was found',
    );
    await expect(signIn.errorText()).toContainText(
      'emailMatchingUserEntityProfileEmail: the Bitbucket account has no confirmed primary email address',
    );
    await expect(signIn.signInButton()).toBeVisible();
    assert.equal(
      await page.getByRole('link', { name: 'Catalog', exact: true }).count(),
      0,
    );
    await page.screenshot({ path: join(SHOTS, 'unconfirmed-email.png') });
    await context.close();
  });
});
