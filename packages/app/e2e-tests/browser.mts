/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser),
 * and a small `expect` that retries like Playwright's web-first assertions.
 */
import { chromium as pwChromium, type Locator } from 'playwright-core';

export type { Browser, BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromium() {
  return pwChromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

const TIMEOUT = 30_000;

async function retry(what: string, check: () => Promise<string | undefined>) {
  const deadline = Date.now() + TIMEOUT;
  let last: string | undefined;
  for (;;) {
    last = await check().catch(e => String(e));
    if (last === undefined) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${last}`);
    await new Promise(r => setTimeout(r, 200));
  }
}

export function expect(locator: Locator) {
  return {
    toBeVisible: () =>
      retry(`expected ${locator} to be visible`, async () =>
        (await locator.first().isVisible()) ? undefined : 'not visible',
      ),
    toContainText: (text: string) =>
      retry(`expected ${locator} to contain "${text}"`, async () => {
        const actual = (await locator.first().textContent()) ?? '';
        return actual.includes(text) ? undefined : `actual text: "${actual}"`;
      }),
    toHaveText: (text: string) =>
      retry(`expected ${locator} to have text "${text}"`, async () => {
        const actual = ((await locator.first().textContent()) ?? '').trim();
        return actual === text ? undefined : `actual text: "${actual}"`;
      }),
  };
}
