// The local web console in a real browser: Debian's Chromium driven by playwright-core. The page
// renders the same Adaptive Cards as Teams with the adaptivecards JS renderer; clicking Approve
// as an approver drives the same use case as a Teams invoke. `.ci/run` installs chromium.
// UPDATE_SCREENSHOT=1 also writes the README's docs/console.png from the first test.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localHeaders, startHarness, waitFor, type Harness } from '../integration/harness.js';
import { p } from '../fixtures/ids.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let h: Harness;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  h = await startHarness();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, permissions: ['clipboard-read', 'clipboard-write'] });
  // Without the login cookie the console is closed and says how to get in.
  const closed = await page.goto(h.app.url + '/');
  expect(closed?.status()).toBe(401);
  expect(await page.locator('body').innerText()).toContain('bin/jit login');
  // The one-time link jit-bot prints at start: one click, and the console opens.
  const link = h.app.loginLink!();
  await page.goto(link);
  expect(new URL(page.url()).pathname).toBe('/');
  await page.waitForSelector('body[data-ready="true"]');
  // The link worked once; the session is an HttpOnly, SameSite=Strict cookie the page's scripts cannot read.
  const [cookie] = await page.context().cookies();
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  expect(await page.evaluate(() => document.cookie)).toBe('');
  const again = await (await browser.newPage()).goto(link);
  expect(again?.status()).toBe(401);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

async function as(principal: string): Promise<void> {
  await page.selectOption('#who', principal);
}

async function say(command: string): Promise<void> {
  await page.fill('#text', command);
  await page.press('#text', 'Enter');
}

const requestIdOnPage = async (): Promise<string> => {
  const text = await page.locator('#chat').innerText();
  const ids = [...text.matchAll(/Request (r[0-9a-z]{9})/g)].map((m) => m[1]!);
  return ids.at(-1)!;
};

/** Sends a request command and waits for the answer naming a request id not seen on the page before. */
async function requestOnPage(command: string): Promise<string> {
  const before = new Set([...(await page.locator('#chat').innerText()).matchAll(/Request (r[0-9a-z]{9})/g)].map((m) => m[1]!));
  await say(command);
  return waitFor('a new request on the page', async () => {
    const id = await requestIdOnPage();
    return id && !before.has(id) ? id : null;
  });
}

describe('local web console (Chromium)', () => {
  it('request as a requester, approve as an approver on the rendered card, see the rule, see it go at expiry', async () => {
    await as('alice@contoso.com');
    await say('rdp vm1 4s from 203.0.113.7');
    await page.locator('#chat').getByText(/is waiting for approval/).last().waitFor();
    const id = await requestIdOnPage();
    expect(id).toMatch(/^r[0-9a-z]{9}$/);

    // The requester cannot approve: her view of the pending card has no buttons.
    await page.locator('#pending').getByText(`Access request ${id}`).waitFor();
    expect(await page.locator('#pending').getByRole('button', { name: 'Approve' }).count()).toBe(0);

    await as('bob@contoso.com');
    const approve = page.locator('#pending').getByRole('button', { name: 'Approve' });
    await approve.first().waitFor();
    await approve.first().click();
    await page.getByText('Approved by bob@contoso.com').first().waitFor();

    // The grant and the rule appear, as the NSG would show them.
    await page.locator('#rules').getByText(`jit-${id}-3389`).waitFor();
    await page.locator('#active').getByText(id).waitFor();
    expect(await page.locator('#rules').innerText()).toContain('203.0.113.7/32');

    // The approval card in the chat follows the grant: a state badge, an h:mm:ss countdown, the
    // connection line with a copy button; the decided card shows no offer expiry.
    const approved = page.locator('#chat .card[data-request="' + id + '"]').last();
    await approved.locator('.badge', { hasText: 'Active' }).waitFor();
    expect(await approved.locator('.bar .when').innerText()).toMatch(/^closes in \d+:\d{2}:\d{2}$/);
    expect(await approved.locator('.connect .cmd').innerText()).toBe('mstsc /v:vm1.contoso.example:3389');
    expect(await approved.innerText()).not.toContain('Offer expires');
    // The active grants table counts down in h:mm:ss and offers the line to copy.
    const row = page.locator('#active tr', { hasText: id });
    expect(await row.locator('td').nth(2).innerText()).toMatch(/^0:00:0\d$/);
    await row.getByRole('button', { name: 'Copy mstsc /v:vm1.contoso.example:3389' }).click();
    await row.locator('button.copy.done').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('mstsc /v:vm1.contoso.example:3389');

    // For the picture: another request waiting for bob, with its buttons and reason field.
    const waiting = (await h.cmd('alice@contoso.com', 'ssh db1 30m from 203.0.113.20 reason "INC-2211 patch window"')).reply;
    const waitingId = waiting.kind === 'pending_approval' ? waiting.request.id : '';
    await page.locator('#pending .card', { hasText: waitingId }).getByRole('button', { name: 'Approve' }).waitFor();
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/console.png', fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync('test-artifacts/console.png', 'docs/console.png');

    // At expiry the BullMQ job closes it; the page updates by server-sent events, and the card in
    // the chat no longer says it is open.
    await page.locator('#rules').getByText(`jit-${id}-3389`).waitFor({ state: 'detached', timeout: 15_000 });
    await waitFor('expired', async () => (await h.get(id))?.status === 'expired' || null);
    expect(await page.locator('#audit').innerText()).toContain('grant.expired');
    await approved.locator('.badge', { hasText: 'Expired' }).waitFor();
    await approved.getByText(/Expired at .*the port is closed/).waitFor();
    expect(await approved.innerText()).not.toMatch(/Open until/);
    expect(await approved.locator('.connect').innerText()).toBe('');
    await page.locator('#pending .card', { hasText: waitingId }).getByRole('button', { name: 'Deny' }).click();
  }, 60_000);

  it('a denied request and a rejected command show their cards with the helpful message', async () => {
    await as('alice@contoso.com');
    await say('rdp vm1 99h from 203.0.113.7');
    await page.getByText(/at most 3h/).last().waitFor();
    expect(await page.locator('#chat').innerText()).toMatch(/Not done/);

    // (An earlier answer already says "is waiting for approval": wait for this request's own.)
    const id = await requestOnPage('rdp vm1 1h from 203.0.113.8');
    await as('carol@contoso.com');
    const card = page.locator('#pending .card').filter({ hasText: `Access request ${id}` });
    await card.getByRole('textbox').fill('no change window');
    await card.getByRole('button', { name: 'Deny' }).click();
    await page.getByText('Denied by carol@contoso.com').first().waitFor();
    expect((await h.get(id))?.status).toBe('denied');
    expect((await h.get(id))?.statusReason).toBe('no change window');

    // A click that is refused says why and changes nothing.
    await as('alice@contoso.com');
    const other = await requestOnPage('rdp vm1 1h from 203.0.113.9');
    const res = await page.evaluate(async (rid) => (await fetch('/api/v1/card-actions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'alice@contoso.com' }, body: JSON.stringify({ verb: 'approve', data: { requestId: rid } }) })).json(), other);
    expect(res).toMatchObject({ kind: 'message' });
    expect(JSON.stringify(res)).toMatch(/not an approver/);
    expect((await h.get(other))?.status).toBe('pending');
  }, 60_000);

  it('a reason being typed survives live updates: another request arriving, and the card itself changing', async () => {
    const idOf = async (as: string, text: string) => {
      const { reply } = await h.cmd(as, text);
      if (reply.kind !== 'pending_approval') throw new Error(`expected a pending request, got ${reply.kind}`);
      return reply.request.id;
    };
    const focusedIn = (id: string) => page.evaluate((rid) => document.activeElement?.closest('.card')?.getAttribute('data-request') === rid && document.activeElement.tagName === 'TEXTAREA', id);

    await as('carol@contoso.com');
    const first = await idOf('alice@contoso.com', 'rdp vm1 1h from 203.0.113.30');
    const card = page.locator('#pending .card').filter({ hasText: `Access request ${first}` });
    await card.getByRole('textbox').click();
    await page.keyboard.type('no change');
    // Another request arrives through the server-sent events while carol types.
    const second = await idOf('bob@contoso.com', 'rdp vm1 1h from 203.0.113.31');
    await page.locator('#pending .card').filter({ hasText: `Access request ${second}` }).waitFor();
    expect(await focusedIn(first)).toBe(true);
    await page.keyboard.type(' window');
    await card.getByRole('button', { name: 'Deny' }).click();
    await waitFor('denied', async () => (await h.get(first))?.status === 'denied' || null);
    expect((await h.get(first))?.statusReason).toBe('no change window');

    // The card being typed into changes (bob's approval on a quorum of 2): the text and the
    // caret stay, and carol's denial carries her reason.
    const q = await idOf('alice@contoso.com', 'ssh quorum2 1h from 203.0.113.32');
    const qCard = page.locator('#pending .card').filter({ hasText: `Access request ${q}` });
    await qCard.getByRole('textbox').click();
    await page.keyboard.type('checked the');
    const bob = await fetch(`${h.app.url}/api/v1/card-actions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'bob@contoso.com', ...localHeaders(h.app) }, body: JSON.stringify({ verb: 'approve', data: { requestId: q } }) });
    expect(bob.status).toBe(200);
    await qCard.getByText('Approvals: 1 of 2').waitFor();
    expect(await focusedIn(q)).toBe(true);
    await page.keyboard.type(' ticket');
    await qCard.getByRole('button', { name: 'Deny' }).click();
    await waitFor('carol decided', async () => ((await h.get(q))?.decisions.length === 2 ? true : null));
    expect((await h.get(q))?.decisions.find((d) => d.by === 'carol@contoso.com')).toMatchObject({ decision: 'deny', reason: 'checked the ticket' });
    await page.locator('#pending .card').filter({ hasText: `Access request ${second}` }).getByRole('button', { name: 'Deny' }).click();
    await waitFor('second denied', async () => (await h.get(second))?.status === 'denied' || null);
  }, 60_000);

  it('a late answer for the principal selected before does not replace the card being typed in', async () => {
    const { reply } = await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.33');
    const id = reply.kind === 'pending_approval' ? reply.request.id : '';
    await as('carol@contoso.com');
    const card = page.locator('#pending .card').filter({ hasText: `Access request ${id}` });
    await card.getByRole('textbox').waitFor();
    // Alice's view of the state is held back while carol is selected again and starts typing.
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const aliceState = /\/console\/api\/state\?as=alice/;
    await page.route(aliceState, async (route) => {
      await held;
      await route.continue();
    });
    await as('alice@contoso.com');
    await as('carol@contoso.com');
    await card.getByRole('textbox').click();
    await page.keyboard.type('outside the');
    const late = page.waitForResponse(aliceState);
    release();
    await late;
    await page.unroute(aliceState);
    await page.evaluate(() => new Promise((r) => setTimeout(r, 300))); // let the page handle the late answer
    expect(await page.evaluate((rid) => document.activeElement?.closest('.card')?.getAttribute('data-request') === rid, id)).toBe(true);
    await page.keyboard.type(' change window');
    await card.getByRole('button', { name: 'Deny' }).click();
    await waitFor('denied', async () => (await h.get(id))?.status === 'denied' || null);
    expect((await h.get(id))?.statusReason).toBe('outside the change window');
  }, 60_000);

  it('the chat scrolls: the newest reply stays in view and the input stays put', async () => {
    await as('dave@contoso.com');
    const inputBox = async () => (await page.locator('#text').boundingBox())!;
    const before = await inputBox();
    for (let i = 0; i < 6; i++) {
      await say(i % 2 ? 'vms' : 'help');
      await page.locator('#chat .msg').nth(-1).getByText(i % 2 ? /Configured/ : /jit-bot commands/).waitFor();
    }
    const after = await inputBox();
    expect(after).toEqual(before);
    expect(after.y + after.height).toBeLessThanOrEqual(1000);
    const chat = await page.locator('#chat').evaluate((c) => ({ top: c.scrollTop, height: c.scrollHeight, client: c.clientHeight, box: c.getBoundingClientRect().toJSON() as DOMRect }));
    expect(chat.height).toBeGreaterThan(chat.client);
    expect(chat.top + chat.client).toBeGreaterThanOrEqual(chat.height - 2);
    const last = (await page.locator('#chat .msg').nth(-1).boundingBox())!;
    expect(last.y + last.height).toBeLessThanOrEqual(chat.box.y + chat.box.height + 1);
    expect(last.y + last.height).toBeGreaterThan(chat.box.y);
  }, 60_000);

  it('card markdown renders without raw escapes, icons instead of emoji, the page font and styled buttons', async () => {
    await as('dave@contoso.com');
    await say('help');
    await page.locator('#chat .msg').nth(-1).getByText('deny <id> [reason <text>]', { exact: false }).waitFor();
    await say('vms');
    await page.locator('#chat .msg').nth(-1).getByText(/^Configured \(\d+\):/).waitFor();
    const chatText = await page.locator('#chat').innerText();
    expect(chatText).not.toContain('\\');
    // Emoji are drawn as icons (no emoji font is needed); none is left as a glyph.
    expect(await page.locator('#chat .ico').count()).toBeGreaterThan(0);
    expect(await page.locator('body').innerText()).not.toMatch(/[\u{1F300}-\u{1FAFF}\u2705\u274C\u23EB\u231B\u23F3\u26A0]/u);

    await as('alice@contoso.com');
    await say('rdp vm1 1h from 203.0.113.40 reason "INC-9 [x](https://evil.example) **now**"');
    await page.locator('#chat').getByText(/is waiting for approval/).last().waitFor();
    const id = await requestIdOnPage();
    await as('bob@contoso.com');
    const card = page.locator('#pending .card').filter({ hasText: `Access request ${id}` });
    await card.getByRole('button', { name: 'Approve' }).waitFor();
    // What the requester typed shows as typed: no link, no bold, no backslash.
    // What a reader sees (the zero-width space that breaks the link shape is invisible).
    expect((await card.innerText()).replace(/\u200b/g, '')).toContain('INC-9 [x](https://evil.example) **now**');
    expect(await card.locator('a').count()).toBe(0);
    await page.mouse.move(0, 0);
    const look = await card.evaluate((c) => {
      const style = (sel: string) => getComputedStyle(c.querySelector(sel)!);
      return {
        body: getComputedStyle(document.body).fontFamily,
        text: style('.ac-textBlock').fontFamily,
        approve: style('.ac-pushButton.style-positive').backgroundColor,
        deny: style('.ac-pushButton.style-destructive').color,
        badge: c.querySelector('.badge')?.textContent,
        offer: c.querySelector('.bar .when')?.textContent,
      };
    });
    expect(look.text).toBe(look.body);
    expect(look.approve).toBe('rgb(21, 128, 61)');
    expect(look.deny).toBe('rgb(185, 28, 28)');
    expect(look.badge).toBe('Pending approval');
    expect(look.offer).toMatch(/^offer expires in [01]:\d{2}:\d{2}$/);
    await card.getByRole('button', { name: 'Deny' }).click();
    await waitFor('denied', async () => (await h.get(id))?.status === 'denied' || null);
  }, 60_000);

  it('the request form and the home view: open the form, fill it, an invalid submission shows the error beside the field, fix, submit, approve from the approver\'s home, the requester\'s home shows the grant', async () => {
    await as('alice@contoso.com');
    const before = (await h.app.service.listVisible(p('alice@contoso.com'), { requester: p('alice@contoso.com'), limit: 200 })).length;
    await page.locator('#formBtn').click();
    const form = page.locator('#chat .card.form').last();
    await form.getByText('Request access').first().waitFor();
    // The target decides the access and duration choices: choose vm1 and update them.
    await form.locator('select').nth(0).selectOption('vm1');
    await form.getByRole('button', { name: 'Update choices for this target' }).click();
    await form.getByText('vm1: approvers decide.').waitFor();
    expect(await form.locator('select').nth(1).locator('option:not([hidden])').allInnerTexts()).toEqual(['RDP (3389/tcp)', 'SSH (22/tcp)']);
    await form.locator('select').nth(1).selectOption('rdp');
    await form.locator('select').nth(2).selectOption({ label: '2h' });
    await form.getByLabel(/^Justification/).first().fill('INC-4711 patch night');
    await form.getByLabel(/^From/).first().fill('999.1.1.1');
    await form.getByRole('button', { name: 'Request', exact: true }).click();
    // Refused: the form comes back with the error right under the source field, the values kept.
    const error = form.locator('.ac-textBlock', { hasText: /^✗ .*address/ });
    await error.waitFor();
    const [fieldBox, errorBox] = [await form.getByLabel(/^From/).first().boundingBox(), await error.boundingBox()];
    expect(errorBox!.y).toBeGreaterThan(fieldBox!.y);
    expect(errorBox!.y - (fieldBox!.y + fieldBox!.height)).toBeLessThan(40);
    expect(await form.getByLabel(/^Justification/).first().inputValue()).toBe('INC-4711 patch night');
    expect((await h.app.service.listVisible(p('alice@contoso.com'), { requester: p('alice@contoso.com'), limit: 200 })).length).toBe(before);
    mkdirSync('test-artifacts', { recursive: true });
    await form.screenshot({ path: 'test-artifacts/console-form.png' });
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync('test-artifacts/console-form.png', 'docs/console-form.png');

    await form.getByLabel(/^From/).first().fill('203.0.113.7');
    await form.getByRole('button', { name: 'Request', exact: true }).click();
    await form.getByText(/is waiting for approval/).waitFor();
    const id = /Request (r[0-9a-z]{9})/.exec(await form.innerText())![1]!;
    expect(await h.get(id)).toMatchObject({ status: 'pending', target: 'vm1', durationMs: 7_200_000, justification: 'INC-4711 patch night', origin: { via: 'console' } });

    // Bob's home: the request waits for him; Approve there runs the approval cards' handler.
    await as('bob@contoso.com');
    await page.locator('#homeBtn').click();
    const home = page.locator('#home');
    await home.getByText(/Waiting for my approval/).waitFor();
    await home.getByText(id).first().waitFor();
    await home.getByRole('button', { name: 'Approve', exact: true }).first().click();
    await home.getByText(`✓ approved: ${id}`).waitFor();
    await waitFor('active', async () => (await h.get(id))?.status === 'active' || null);

    // Alice's home shows the open grant: time left, the connection line, Extend and Close.
    await as('alice@contoso.com');
    await home.getByText(/My open access \(1\)/).waitFor();
    await home.getByText('mstsc /v:vm1.contoso.example:3389').waitFor();
    await home.getByRole('button', { name: 'Close now' }).waitFor();
    await page.locator('#homePanel').screenshot({ path: 'test-artifacts/console-home.png' });
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync('test-artifacts/console-home.png', 'docs/console-home.png');
    await home.getByRole('button', { name: 'Close now' }).click();
    await waitFor('revoked', async () => (await h.get(id))?.status === 'revoked' || null);
    await home.getByText(/My open access \(0\)/).waitFor();
  }, 90_000);

  it('the header note is readable and /favicon.ico is an icon', async () => {
    const res = await fetch(`${h.app.url}/favicon.ico`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
    expect(await res.text()).toMatch(/^<svg /);
    // WCAG contrast of the note against the header: at least 4.5:1.
    const ratio = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
      const lum = ([r, g, b]: number[]) => {
        const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
      };
      const fg = lum(rgb(getComputedStyle(document.querySelector('header .mode')!).color));
      const bg = lum(rgb(getComputedStyle(document.querySelector('header')!).backgroundColor));
      return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    });
    expect(ratio).toBeGreaterThanOrEqual(4.5);
  });
});
