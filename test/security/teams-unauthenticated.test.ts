// Attacks on unauthenticated Teams mode (TEAMS_ALLOW_UNAUTHENTICATED, for local tests): there the
// body says who is talking, so a web page that gets a browser to POST to /api/messages (text/plain
// needs no CORS preflight) could act as anyone, and an activity naming its own `serviceUrl` would
// make the bot send request details and member look-ups there (blind SSRF). Each attempt must be
// refused, reach no server, and store nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { FakeConnector, messageActivity, personalConversation, postActivity, type TeamsUser } from '../fakes/connector.js';
import { startHarness, waitFor, type Harness } from '../integration/harness.js';
import { raw, reverseProxy } from './http.js';
import { p } from '../fixtures/ids.js';

const ALICE: TeamsUser = { id: '29:1alice', name: 'alice', aadObjectId: '6f1c0c1e-0000-4000-8000-00000000a11c', userPrincipalName: 'alice@contoso.com' };
const BOB: TeamsUser = { id: '29:1bob', name: 'bob', aadObjectId: '6f1c0c1e-0000-4000-8000-000000000b0b', userPrincipalName: 'bob@contoso.com' };

let bf: FakeConnector; // TEAMS_SERVICE_URL: the local connector the operator configured
let evil: FakeConnector; // the attacker's server, named in forged activities
let h: Harness;

beforeAll(async () => {
  bf = await new FakeConnector([ALICE, BOB]).start();
  evil = await new FakeConnector([ALICE, BOB]).start();
  h = await startHarness({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: bf.url });
});
afterAll(async () => {
  await h?.close();
  await bf?.close();
  await evil?.close();
});

const forged = (serviceUrl: string) => JSON.stringify(messageActivity(serviceUrl, ALICE, 'rdp vm1 1h from 203.0.113.7 reason "INC-1"'));
const nothingHappened = async () => {
  expect(evil.calls).toEqual([]);
  const all = await h.app.service.list(p('dave@contoso.com'), 'all');
  expect(all.kind === 'list' && all.requests).toEqual([]);
  expect(await h.app.redis.keys(`${h.prefix}:teams:*`)).toEqual([]);
};

describe('unauthenticated Teams mode: configuration', () => {
  it('needs a loopback TEAMS_SERVICE_URL and is refused with PUBLIC_URL (an app id was already refused)', () => {
    expect(() => loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true' })).toThrow(/TEAMS_SERVICE_URL: with TEAMS_ALLOW_UNAUTHENTICATED it must be a loopback URL/);
    expect(() => loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: 'https://evil.example/' })).toThrow(/TEAMS_SERVICE_URL/);
    expect(() => loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: 'http://127.0.0.1:3979', PUBLIC_URL: 'https://jit.contoso.example' })).toThrow(/TEAMS_ALLOW_UNAUTHENTICATED: refused with PUBLIC_URL/);
    expect(() => loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', MICROSOFT_APP_ID: '00000000-0000-4000-8000-0000000000a1', MICROSOFT_APP_PASSWORD: 'x' })).toThrow(/TEAMS_ALLOW_UNAUTHENTICATED/);
    for (const url of ['http://127.0.0.1:3979', 'http://localhost:3979/', 'http://[::1]:3979']) expect(loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: url }).TEAMS_ALLOW_UNAUTHENTICATED).toBe(true);
  });
});

describe('unauthenticated Teams mode: attacks', () => {
  it('a cross-site text/plain POST (no preflight) naming a foreign serviceUrl: 415, the foreign server gets nothing', async () => {
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(h.app.url, '/api/messages', { method: 'POST', headers: { 'content-type': type, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }, body: forged(evil.url) });
      expect(res.status, type).toBe(415);
    }
    expect((await raw(h.app.url, '/api/messages', { method: 'POST', body: forged(evil.url) })).status).toBe(415);
    await nothingHappened();
  });

  it('a page that manages to send JSON (Origin / Sec-Fetch-Site) is refused', async () => {
    const pages: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-origin', origin: h.app.url }];
    for (const headers of pages) {
      const res = await raw(h.app.url, '/api/messages', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: forged(bf.url) });
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    expect(bf.calls).toEqual([]);
    await nothingHappened();
  });

  it('an activity naming any serviceUrl but TEAMS_SERVICE_URL is refused: no reply, no member look-up goes there', async () => {
    for (const url of [evil.url, 'http://169.254.169.254/metadata/', `${bf.url}../x`, bf.url.replace('127.0.0.1', 'localhost')]) {
      const res = await postActivity(h.app.url, JSON.parse(forged(url)));
      expect(res.status, url).toBe(403);
    }
    const { serviceUrl: _, ...noUrl } = JSON.parse(forged(evil.url)) as Record<string, unknown>;
    expect((await postActivity(h.app.url, noUrl)).status).toBe(403);
    expect(bf.calls).toEqual([]);
    await nothingHappened();
  });

  it('through a same-host proxy, or with a foreign Host (DNS rebinding): refused', async () => {
    const proxy = await reverseProxy(h.app.url);
    try {
      const res = await raw(proxy.url, '/api/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: forged(bf.url) });
      expect(res.status).toBe(403);
    } finally {
      await proxy.close();
    }
    const port = new URL(h.app.url).port;
    const rebound = await raw(h.app.url, '/api/messages', { method: 'POST', headers: { 'content-type': 'application/json', host: `rebind.evil.example:${port}` }, body: forged(bf.url) });
    expect(rebound.status).toBe(403);
    expect(bf.calls).toEqual([]);
    await nothingHappened();
  });

  it('a local tool posting JSON with the configured serviceUrl works; every outgoing call goes to TEAMS_SERVICE_URL, even for a stored reference naming another', async () => {
    const res = await postActivity(h.app.url, messageActivity(bf.url, ALICE, 'jit rdp vm1 1h from 203.0.113.7 reason "INC-2"'));
    expect(res.status).toBe(200);
    const reply = await waitFor('reply', async () => bf.to(personalConversation(ALICE).id)[0]);
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(reply.body))![1]!;
    // A reference planted in Redis (say, by an earlier run) that names the attacker's server:
    const key = `${h.prefix}:teams:ref:user:alice@contoso.com`;
    const ref = JSON.parse((await h.app.redis.get(key))!) as Record<string, unknown>;
    await h.app.redis.set(key, JSON.stringify({ ...ref, serviceUrl: evil.url }));
    const before = bf.to(personalConversation(ALICE).id).length;
    await h.cmd('bob@contoso.com', `deny ${id} reason "no"`);
    await waitFor('denial notice', async () => bf.to(personalConversation(ALICE).id).length > before || null);
    expect(evil.calls).toEqual([]);
  });
});
