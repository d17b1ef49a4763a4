// Attacks on the local channel (the console, /api/local/*, X-Jit-Act-As), which acts as any
// principal: through a same-host reverse proxy or a TCP tunnel, by DNS rebinding (a foreign Host),
// from a cross-site page. Each must fail to get in and change nothing; the user with the secret
// of the run (the token file, the one-time login link) still gets in.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import type { Logger } from '../../src/log.js';
import { localHeaders, startHarness, type Harness } from '../integration/harness.js';
import { raw, reverseProxy, tcpTunnel } from './http.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
let host: string;

beforeAll(async () => {
  h = await startHarness();
  host = new URL(h.app.url).host;
});
afterAll(async () => {
  await h?.close();
});

const DAVE = 'dave@contoso.com'; // a JIT Admin
const command = (text: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-jit-act-as': DAVE, ...headers },
  body: JSON.stringify({ text }),
});
const nothingChanged = async () => {
  const all = await h.app.service.list(p(DAVE), 'all');
  expect(all.kind === 'list' && all.requests).toEqual([]);
  expect(await h.app.gate.list()).toEqual([]);
};
/** The console's cookie, from a login link used once. */
const loginCookie = async (): Promise<string> => {
  const link = new URL(h.app.loginLink!());
  const res = await raw(h.app.url, link.pathname + link.search);
  expect(res.status).toBe(303);
  return String(res.headers['set-cookie']).split(';')[0]!;
};

describe('local channel: the secret of the run', () => {
  it('is written to <data dir>/local-token, readable by its owner only (0600)', () => {
    const file = join(h.dir, 'local-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(h.app.localToken);
    expect(h.app.localToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('without it, from this machine, every local-channel route answers 401 and nothing changes', async () => {
    for (const path of ['/api/local/rules', '/api/local/audit', '/api/local/audit.csv?as=dave@contoso.com', `/console/api/state?as=${DAVE}`, '/console/api/principals', '/console/app.js', `/console/api/form?as=${DAVE}`, `/console/api/home?as=${DAVE}`]) {
      expect((await raw(h.app.url, path)).status, path).toBe(401);
    }
    // The form's submission through the console: refused too, nothing created.
    const submit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ as: 'alice@contoso.com', verb: 'jitRequest', data: { target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.66' } }) };
    expect((await raw(h.app.url, '/console/api/action', submit)).status).toBe(401);
    expect((await raw(h.app.url, '/api/local/login-link', { method: 'POST' })).status).toBe(401);
    const page = await raw(h.app.url, '/');
    expect(page.status).toBe(401);
    expect(page.text).toContain('bin/jit login');
    expect(page.text).not.toContain('console/app.js');
    const attempts: Array<Record<string, string>> = [{}, { 'x-jit-local-token': 'x'.repeat(43) }, { cookie: `jit_local_${new URL(h.app.url).port}=forged` }];
    for (const wrong of attempts) {
      const res = await raw(h.app.url, '/api/v1/commands', command('rdp vm1 1h from 203.0.113.66', wrong));
      expect(res.status).toBe(401);
    }
    await nothingChanged();
  });

  it('with it, the CLI and the harness act as the principal they name (RBAC still applies)', async () => {
    const ok = await raw(h.app.url, '/api/v1/commands', command('list', localHeaders(h.app)));
    expect(ok.status).toBe(200);
    expect((await raw(h.app.url, '/api/local/rules', { headers: localHeaders(h.app) })).status).toBe(200);
  });
});

describe('local channel: a same-host reverse proxy or tunnel (nginx proxy_pass, ngrok)', () => {
  it('a request through a reverse proxy to 127.0.0.1 is refused, even one that carries the secret', async () => {
    const proxy = await reverseProxy(h.app.url);
    try {
      const attack = await raw(proxy.url, '/api/v1/commands', command('rdp vm1 1h from 198.51.100.66'));
      expect(attack.status).toBe(403);
      expect(attack.text).toMatch(/proxied/);
      // Even a leaked token does not work through the proxy.
      expect((await raw(proxy.url, '/api/v1/commands', command('rdp vm1 1h from 198.51.100.66', localHeaders(h.app)))).status).toBe(403);
      expect((await raw(proxy.url, '/api/local/rules', { headers: localHeaders(h.app) })).status).toBe(403);
      expect((await raw(proxy.url, '/')).status).toBe(403);
      expect((await raw(proxy.url, `/console/api/state?as=${DAVE}`)).status).toBe(403);
      // Every proxy header is refused on its own.
      for (const header of ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via']) {
        const res = await raw(h.app.url, '/api/local/rules', { headers: { ...localHeaders(h.app), [header]: header === 'via' ? '1.1 nginx' : 'for=198.51.100.66' } });
        expect(res.status, header).toBe(403);
      }
      await nothingChanged();
    } finally {
      await proxy.close();
    }
  });

  it('a TCP tunnel adds no header, so only the secret stops it: without it, 401', async () => {
    const tunnel = await tcpTunnel(h.app.url);
    try {
      // The attacker names the server's own Host: nothing tells the request apart from a local one.
      const attack = await raw(tunnel.url, '/api/v1/commands', command('rdp vm1 1h from 198.51.100.67', { host }));
      expect(attack.status).toBe(401);
      expect((await raw(tunnel.url, '/api/local/rules', { headers: { host } })).status).toBe(401);
      await nothingChanged();
    } finally {
      await tunnel.close();
    }
  });
});

describe('local channel: DNS rebinding and cross-site pages', () => {
  it('answers only Host 127.0.0.1 / [::1] / localhost with its own port, whatever the credentials', async () => {
    const cookie = await loginCookie();
    const port = new URL(h.app.url).port;
    for (const foreign of [`rebind.evil.example:${port}`, 'rebind.evil.example', `127.0.0.1:${Number(port) + 1}`, `127.0.0.2:${port}`, `0.0.0.0:${port}`]) {
      for (const creds of [{}, localHeaders(h.app), { cookie }]) {
        const res = await raw(h.app.url, `/console/api/state?as=${DAVE}`, { headers: { host: foreign, ...creds } });
        expect(res.status, `${foreign} ${Object.keys(creds).join()}`).toBe(403);
      }
      expect((await raw(h.app.url, '/api/v1/commands', command('rdp vm1 1h from 203.0.113.68', { host: foreign, cookie }))).status).toBe(403);
    }
    for (const local of [`localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, `127.0.0.1:${port}`]) {
      expect((await raw(h.app.url, '/api/local/rules', { headers: { host: local, ...localHeaders(h.app) } })).status, local).toBe(200);
    }
    await nothingChanged();
  });

  it('refuses a cross-site Origin and Sec-Fetch-Site cross-site / same-site, even with the login cookie', async () => {
    const cookie = await loginCookie();
    const attacks: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:${Number(new URL(h.app.url).port) + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const a of attacks) {
      expect((await raw(h.app.url, '/api/v1/commands', command('rdp vm1 1h from 203.0.113.69', { cookie, ...a }))).status, JSON.stringify(a)).toBe(403);
      expect((await raw(h.app.url, `/console/api/state?as=${DAVE}`, { headers: { cookie, ...a } })).status, JSON.stringify(a)).toBe(403);
      const submit = JSON.stringify({ as: 'alice@contoso.com', verb: 'jitRequest', data: { target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.69' } });
      expect((await raw(h.app.url, '/console/api/action', { method: 'POST', headers: { 'content-type': 'application/json', cookie, ...a }, body: submit })).status, JSON.stringify(a)).toBe(403);
    }
    await nothingChanged();
    // The console's own page (same origin) gets in with the cookie.
    const own = await raw(h.app.url, '/api/v1/commands', command('list', { cookie, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }));
    expect(own.status).toBe(200);
  });
});

describe('local channel: the login link', () => {
  it('works once and gives an HttpOnly SameSite=Strict cookie; a used, forged or proxied code gets nothing', async () => {
    const link = new URL(h.app.loginLink!());
    expect(link.origin).toBe(h.app.url);
    // Through a proxy: refused, and the code is not used up by it.
    const proxy = await reverseProxy(h.app.url);
    try {
      expect((await raw(proxy.url, link.pathname + link.search)).status).toBe(403);
    } finally {
      await proxy.close();
    }
    const first = await raw(h.app.url, link.pathname + link.search);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/');
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    expect(cookie).not.toContain(h.app.localToken);
    expect((await raw(h.app.url, '/', { headers: { cookie } })).status).toBe(200);

    const second = await raw(h.app.url, link.pathname + link.search);
    expect(second.status).toBe(401);
    expect(second.headers['set-cookie']).toBeUndefined();
    expect((await raw(h.app.url, `/login?code=${'A'.repeat(32)}`)).status).toBe(401);
    expect((await raw(h.app.url, '/login')).status).toBe(401);
  });
});

describe('local channel: off by default where others reach the server', () => {
  it('is off beside Slack, Teams (app id or unauthenticated mode) or PUBLIC_URL; on for a bare local start', () => {
    const slack = { SLACK_SIGNING_SECRET: 'abcdefgh12345678', SLACK_BOT_TOKEN: 'xoxb-1-2-3' };
    const teams = { MICROSOFT_APP_ID: '00000000-0000-4000-8000-0000000000a1', MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TYPE: 'SingleTenant', MICROSOFT_APP_TENANT_ID: '00000000-0000-4000-8000-0000000000b2' };
    const unauth = { TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: 'http://127.0.0.1:3979' };
    const pub = { PUBLIC_URL: 'https://jit.contoso.example' };
    expect(loadConfig({}).JIT_LOCAL_CHANNEL).toBe(true);
    for (const env of [slack, teams, unauth, pub]) {
      expect(loadConfig(env).JIT_LOCAL_CHANNEL, Object.keys(env)[0]).toBe(false);
      expect(loadConfig({ ...env, JIT_LOCAL_CHANNEL: 'true' }).JIT_LOCAL_CHANNEL).toBe(true);
    }
  });

  it('off: no token file, and the console, /api/local and X-Jit-Act-As are not served', async () => {
    const off = await startHarness({ PUBLIC_URL: 'https://jit.contoso.example', JIT_LOCAL_CHANNEL: '' });
    try {
      expect(off.app.localToken).toBeUndefined();
      expect(() => statSync(join(off.dir, 'local-token'))).toThrow();
      expect((await raw(off.app.url, '/')).status).toBe(404);
      expect((await raw(off.app.url, '/api/local/rules')).status).toBe(404);
      expect((await raw(off.app.url, '/api/v1/commands', command('list'))).status).toBe(401);
    } finally {
      await off.close();
    }
  });

  it('turned on explicitly beside PUBLIC_URL, it starts with a warning', async () => {
    const warnings: string[] = [];
    const log: Logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (msg) => warnings.push(msg) };
    const on = await startHarness({ PUBLIC_URL: 'https://jit.contoso.example', JIT_LOCAL_CHANNEL: 'true' }, { log });
    try {
      expect(warnings.some((w) => /JIT_LOCAL_CHANNEL=true beside PUBLIC_URL/.test(w))).toBe(true);
      expect(on.app.localToken).toBeDefined();
    } finally {
      await on.close();
    }
  });
});

describe('the CLI', () => {
  const cli = (args: string[], env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => resolve({ code, out, err }));
    });

  it('reads the token file; `login` prints a fresh one-time link; without the file it says what to do', async () => {
    const env = { JIT_URL: h.app.url, JIT_DATA_DIR: h.dir };
    const list = await cli(['as', 'alice@contoso.com', 'list'], env);
    expect(list.code, list.err).toBe(0);
    const login = await cli(['login'], env);
    expect(login.code, login.err).toBe(0);
    const link = /(http:\/\/\S+\/login\?code=\S+)/.exec(login.out)![1]!;
    const url = new URL(link);
    expect((await raw(h.app.url, url.pathname + url.search)).status).toBe(303);

    const stranger = await cli(['as', 'dave@contoso.com', 'rdp', 'vm1', '1h', 'from', '203.0.113.70'], { JIT_URL: h.app.url, JIT_DATA_DIR: mkdtempSync(join(tmpdir(), 'jit-nodata-')) });
    expect(stranger.code).toBe(1);
    expect(stranger.err).toMatch(/local-token/);
    await nothingChanged();
  }, 30_000);
});
