// Attacks on (and accidents with) the one-time "my IP" link: a proxy that forwards `ip:port`
// (Azure Application Gateway does) used to burn the link on a parse error; a forwarding header
// naming a range, Any or a list must not become the grant's source. The address is now validated
// before the link is used up, and only one IP is taken from the header.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hopAddress } from '../../src/server.js';
import { startHarness, type Harness } from '../integration/harness.js';

let h: Harness;

beforeAll(async () => {
  // 127.0.0.2 plays the trusted proxy (Application Gateway) in front of jit-bot.
  h = await startHarness({ PUBLIC_URL: 'https://jit.contoso.example', JIT_TRUSTED_PROXIES: '127.0.0.2/32' });
});
afterAll(async () => {
  await h?.close();
});

async function link(): Promise<{ id: string; path: string }> {
  const { reply } = await h.cmd('alice@contoso.com', 'rdp vm1 1h');
  if (reply.kind !== 'awaiting_source') throw new Error(`expected a link, got ${reply.kind}`);
  return { id: reply.request.id, path: new URL(reply.link).pathname };
}

/** A POST of the link's form as the proxy forwards it. */
function viaProxy(path: string, xff: string, method = 'POST'): Promise<{ status: number; text: string }> {
  const url = new URL(h.app.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, localAddress: '127.0.0.2', headers: { 'x-forwarded-for': xff } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('my IP link: the address is validated before the link is used up', () => {
  it('Application Gateway style `ip:port` hops are read as the IP, for IPv4 and IPv6', async () => {
    for (const [hop, source] of [
      ['203.0.113.99:51234', '203.0.113.99/32'],
      ['[2001:db8::99]:51234', '2001:db8::99/128'],
      ['[2001:db8::98]', '2001:db8::98/128'],
    ] as const) {
      const { id, path } = await link();
      const page = await viaProxy(path, `${hop}, 127.0.0.2`, 'GET');
      expect(page.status, hop).toBe(200);
      expect(page.text).toContain(source.replace(/\/\d+$/, ''));
      expect((await viaProxy(path, `${hop}, 127.0.0.2`)).status, hop).toBe(200);
      expect(await h.get(id), hop).toMatchObject({ status: 'pending', source });
    }
  });

  it('a forwarded value that is not one IP is refused and the link still works afterwards', async () => {
    for (const hop of ['not-an-ip', '203.0.113.0/24', '*', '0.0.0.0/0', '203.0.113.7:99999', 'unknown', '203.0.113.07', '[fe80::1%eth0]:80']) {
      const { id, path } = await link();
      const bad = await viaProxy(path, hop);
      expect(bad.status, hop).toBe(400);
      expect(bad.text).toMatch(/not a single IP address|was not used|not used/);
      expect((await h.get(id))!.status, hop).toBe('awaiting_source');
      // The link was not burnt: opened again through a well-behaved hop, it records that address.
      const good = await viaProxy(path, '203.0.113.50');
      expect(good.status, hop).toBe(200);
      expect(await h.get(id), hop).toMatchObject({ status: 'pending', source: '203.0.113.50/32' });
    }
  });

  it('an address the policy refuses leaves the link usable too', async () => {
    const { reply } = await h.cmd('alice@contoso.com', 'port 8443 dev1 10m');
    if (reply.kind !== 'awaiting_source') throw new Error(`expected a link, got ${reply.kind}`);
    const path = new URL(reply.link).pathname;
    const refused = await viaProxy(path, '203.0.113.99:443');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('203.0.113.99/32 is not allowed on dev1 8443/tcp');
    const ok = await viaProxy(path, '198.51.100.9:443');
    expect(ok.status).toBe(200);
    expect((await h.get(reply.request.id))!.source).toBe('198.51.100.9/32');
    expect((await viaProxy(path, '198.51.100.9')).status).toBe(400); // and now it is used up
  });

  it('hopAddress takes exactly one IP', () => {
    expect(hopAddress('203.0.113.7')).toBe('203.0.113.7');
    expect(hopAddress(' 203.0.113.7:8080 ')).toBe('203.0.113.7');
    expect(hopAddress('[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(hopAddress('[::ffff:203.0.113.7]:443')).toBe('203.0.113.7');
    for (const bad of ['203.0.113.7, 198.51.100.1', '203.0.113.0/24', '*', '', 'localhost', '2001:db8::1:443:x', '[2001:db8::1]:443:1']) expect(hopAddress(bad), bad).toBeUndefined();
  });
});
