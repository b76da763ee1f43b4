import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/test-app.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `[skip] browser test of the page at /: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`,
  );
}
const describeBrowser = haveChromium ? describe : describe.skip;

describeBrowser('the page at / in headless Chromium', () => {
  let t: TestApp | undefined;
  let browser: Browser | undefined;
  let profileDir: string;

  beforeAll(async () => {
    t = await startTestApp();
    profileDir = mkdtempSync(join(tmpdir(), 'chromium-'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
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
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    rmSync(profileDir, { recursive: true, force: true });
  });

  it('lets two people chat in a room and shows live events', async () => {
    const alice = await browser!.newPage();
    const bob = await browser!.newPage();
    for (const [page, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      await page.goto(t!.url);
      await page.waitForSelector('#status:text-is("connected")');
      await page.fill('#name', name);
      await page.fill('#room', 'browsers');
      await page.click('#join button');
    }
    await alice.waitForSelector('li.presence:has-text("bob joined")');

    await alice.fill('#text', 'hello from alice');
    await alice.click('#send button');
    await bob.waitForSelector('li.message:has-text("hello from alice")', { timeout: 10_000 });
    expect(await bob.locator('li.message', { hasText: 'hello from alice' }).count()).toBe(1);
    // The sender sees its own message too.
    await alice.waitForSelector('li.message:has-text("hello from alice")');

    // A user created through the API shows up in the live events pane.
    await fetch(`${t!.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Page Watcher', email: `page-${String(Date.now())}@example.org` }),
    });
    await bob.waitForSelector('#events li:has-text("user.created")', { timeout: 10_000 });
    await bob.screenshot({ path: join(profileDir, 'page.png') });
  });
});
