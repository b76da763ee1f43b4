import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ChatClient } from '../support/chat-client.js';
import { adminJson, mintToken } from '../support/tokens.js';

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
    // Rooms of more than two get presence summaries (the last test); the others stay at two.
    t = await startTestApp({ CHAT_PRESENCE_EVENTS_MAX: '2', CHAT_PRESENCE_INTERVAL_MS: '200' });
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

  /** Opens the page and waits for its welcome: the name the server gave it. */
  const openPage = async () => {
    const page = await browser!.newPage();
    await page.goto(t!.url);
    await page.waitForSelector('#status:text-is("connected")');
    await page.waitForSelector('#me:has-text("you are")');
    return page;
  };
  const joinRoom = async (page: Awaited<ReturnType<typeof openPage>>, room: string) => {
    await page.fill('#room', room);
    await page.click('#join button');
  };

  it('lets two guests chat in a room out of the box and shows live events', async () => {
    const alice = await openPage();
    const bob = await openPage();
    const aliceName = /you are (guest-[0-9a-f]{6}) \(guest\)$/.exec((await alice.textContent('#me')) ?? '')?.[1];
    const bobName = /you are (guest-[0-9a-f]{6}) \(guest\)$/.exec((await bob.textContent('#me')) ?? '')?.[1];
    expect({ aliceName, bobName }).toEqual({ aliceName: expect.any(String), bobName: expect.any(String) });
    await joinRoom(alice, 'browsers');
    await joinRoom(bob, 'browsers');
    await alice.waitForSelector(`li.presence:has-text("${String(bobName)} (guest) joined")`);

    await alice.fill('#text', 'hello from alice');
    await alice.click('#send button');
    await bob.waitForSelector('li.message:has-text("hello from alice")', { timeout: 10_000 });
    expect(await bob.locator('li.message', { hasText: 'hello from alice' }).count()).toBe(1);
    expect(await bob.locator('li.message', { hasText: 'hello from alice' }).textContent()).toContain(
      `${String(aliceName)} (guest) hello from alice`,
    );
    // The sender sees its own message too.
    await alice.waitForSelector('li.message:has-text("hello from alice")');

    // A user created through the API shows up in the live events pane.
    await fetch(`${t!.url}/users`, {
      method: 'POST',
      headers: adminJson,
      body: JSON.stringify({ name: 'Page Watcher', email: `page-${String(Date.now())}@example.org` }),
    });
    await bob.waitForSelector('#events li:has-text("user.created")', { timeout: 10_000 });
    await bob.screenshot({ path: join(profileDir, 'page.png') });
  });

  it('posts under the name of a pasted token, over /ws and /events with ?access_token=', async () => {
    const token = await mintToken({ sub: 'page-carol', name: 'Carol Token', scope: 'chat:write' });
    const carol = await openPage();
    const watcher = await openPage();
    await joinRoom(watcher, 'tokens');
    await joinRoom(carol, 'tokens');
    const urls: string[] = [];
    carol.on('request', (request) => urls.push(request.url()));
    carol.on('websocket', (socket) => urls.push(socket.url()));
    await carol.fill('#token', token);
    await carol.click('#auth button');
    await carol.waitForSelector('#me:text-is("you are Carol Token")');
    // Back in its room after the reconnect.
    await watcher.waitForSelector('li.presence:has-text("Carol Token joined tokens")');
    await carol.fill('#text', 'signed and sealed');
    await carol.click('#send button');
    const seen = await watcher.waitForSelector('li.message:has-text("signed and sealed")', { timeout: 10_000 });
    expect(await seen.textContent()).toMatch(/^Carol Token signed and sealed/);
    expect(urls.some((u) => u.includes('/ws?access_token='))).toBe(true);
    expect(urls.some((u) => u.includes('/events?access_token='))).toBe(true);
    // The events stream opened with the token still delivers.
    await carol.waitForSelector('#events li:has-text("chat.message")', { timeout: 10_000 });
  });

  it("shows a large room's presence as counted summaries", async () => {
    const page = await openPage();
    await joinRoom(page, 'crowd');
    const others: ChatClient[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const c = await ChatClient.open(t!);
        await c.join('crowd');
        others.push(c);
      }
      // The second member is shown by name; the third and later only counted, in summaries up to 5.
      await page.waitForSelector('li.presence:has-text("0 left (5 here)")', { timeout: 10_000 });
      others[3]!.close();
      await page.waitForSelector('li.presence:has-text("crowd: 0 joined, 1 left (4 here)")', { timeout: 10_000 });
      const texts: string[] = await page.$$eval('li.presence', (items: { textContent: string | null }[]) =>
        items.map((li) => li.textContent ?? ''),
      );
      const summaries = texts.filter((text) => text.startsWith('crowd:'));
      // Three joins counted in summaries, never one frame each.
      expect(summaries.reduce((n, text) => n + Number(/(\d+) joined/.exec(text)?.[1]), 0)).toBe(3);
    } finally {
      for (const c of others) c.ws.terminate();
    }
  });
});
