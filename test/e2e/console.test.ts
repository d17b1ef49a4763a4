// The local web console in a real browser: Debian's Chromium driven by playwright-core. The page
// renders the same Adaptive Cards as Teams with the adaptivecards JS renderer; clicking Approve
// as an approver drives the same use case as a Teams invoke. `.ci/run` installs chromium.
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../integration/harness.js';

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
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(h.app.url + '/');
  await page.waitForSelector('body[data-ready="true"]');
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
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/console.png', fullPage: true });

    // At expiry the BullMQ job closes it; the page updates by server-sent events.
    await page.locator('#rules').getByText(`jit-${id}-3389`).waitFor({ state: 'detached', timeout: 15_000 });
    await waitFor('expired', async () => (await h.get(id))?.status === 'expired' || null);
    expect(await page.locator('#audit').innerText()).toContain('grant.expired');
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
});
