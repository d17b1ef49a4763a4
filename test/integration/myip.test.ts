// "My IP": without `from`, the reply carries a one-time link that records the address it was
// opened from (X-Forwarded-For only from trusted proxies) and continues the request.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, startHarness, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ PUBLIC_URL: 'https://jit.contoso.example', JIT_TRUSTED_PROXIES: '127.0.0.2/32' });
});
afterAll(async () => {
  await h?.close();
});

async function linkFor(text: string): Promise<{ id: string; path: string }> {
  const { reply, text: shown } = await h.cmd('alice@contoso.com', text);
  expect(reply.kind, shown).toBe('awaiting_source');
  if (reply.kind !== 'awaiting_source') throw new Error('unreachable');
  expect(reply.link).toMatch(/^https:\/\/jit\.contoso\.example\/myip\/[0-9a-z]{32}$/);
  expect(shown).toContain('one use');
  return { id: reply.request.id, path: new URL(reply.link).pathname };
}

describe('my IP link', () => {
  it('GET shows the address without consuming the link; POST records it once and the request goes to approval', async () => {
    const { id, path } = await linkFor('rdp vm1 1h');
    expect((await h.get(id))!.status).toBe('awaiting_source');

    const page = await fetch(h.app.url + path); // a chat unfurler would do this: harmless
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await page.text()).toContain('127.0.0.1');
    expect((await h.get(id))!.status).toBe('awaiting_source');

    const post = await fetch(h.app.url + path, { method: 'POST' });
    expect(post.status).toBe(200);
    expect(await post.text()).toContain('waiting for approval');
    expect(await h.get(id)).toMatchObject({ status: 'pending', source: '127.0.0.1/32' });

    const replay = await fetch(h.app.url + path, { method: 'POST' });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('expired or was already used');
    const audit = (await h.audit(id)).map((e) => e.action);
    expect(audit).toEqual(['request.created', 'request.awaiting_source', 'request.source_recorded']);
  });

  it('X-Forwarded-For from an untrusted peer is ignored', async () => {
    const { id, path } = await linkFor('rdp vm1 1h');
    await fetch(h.app.url + path, { method: 'POST', headers: { 'x-forwarded-for': '198.51.100.77' } });
    expect((await h.get(id))!.source).toBe('127.0.0.1/32');
  });

  it('X-Forwarded-For from a trusted proxy gives the client address', async () => {
    const { id, path } = await linkFor('rdp vm1 1h');
    const url = new URL(h.app.url + path);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path, method: 'POST', localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.99, 127.0.0.2' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect((await h.get(id))!.source).toBe('203.0.113.99/32');
  });

  it('a source the policy does not allow is refused and the request stays waiting', async () => {
    // dev1's 8443 allows only 198.51.100.0/24 and 2001:db8::/32; the link is opened from 127.0.0.1.
    const { reply } = await h.cmd('alice@contoso.com', 'port 8443 dev1 10m');
    const id = requestOf(reply).id;
    expect(reply.kind).toBe('awaiting_source');
    if (reply.kind !== 'awaiting_source') return;
    const res = await fetch(h.app.url + new URL(reply.link).pathname, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('127.0.0.1/32 is not allowed on dev1 8443/tcp');
    expect((await h.get(id))!.status).toBe('awaiting_source');
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
  });

  it('an unknown token is a clear 410', async () => {
    const res = await fetch(`${h.app.url}/myip/${'x'.repeat(32)}`);
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('expired or was already used');
  });
});
