// Pre-authentication memory and socket exhaustion. Bolt 4 buffers a whole /slack/events body
// before it checks the signature: two 300 MB POSTs with a junk signature took the process from
// 155 MB to 1.33 GB RSS. Now every route has a body cap applied before anything buffers (413),
// slow requests are cut by the request / header timeouts, and connections are capped.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_MAX_BODY, MAX_BODY } from '../../src/server.js';
import { FakeConnector } from '../fakes/connector.js';
import { FakeSlack, sendSigned, slashBody } from '../fakes/slack.js';
import { startHarness, waitFor, type Harness } from '../integration/harness.js';
import { p } from '../fixtures/ids.js';

const SECRET = 'body-limits-signing-secret';
const HUGE = 300 * 1024 * 1024;
/**
 * What the client can have written when the server stops reading is the server's cap plus the
 * kernel's socket buffers on both sides (a few MB on loopback); a server that read the whole body
 * would have taken all 300 MB.
 */
const READ_BOUND = 32 * 1024 * 1024;

let slack: FakeSlack;
let bf: FakeConnector;
let h: Harness;

beforeAll(async () => {
  slack = await new FakeSlack({}).start();
  bf = await new FakeConnector([]).start();
  h = await startHarness({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_API_URL: slack.apiUrl, TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: bf.url });
});
afterAll(async () => {
  await h?.close();
  await slack?.close();
  await bf?.close();
});

interface Flood {
  status: number;
  /** Body bytes the client managed to hand to the connection before it got the answer or was cut. */
  written: number;
}

/**
 * Sends a request whose body is up to `total` bytes of junk (announced with Content-Length, or
 * chunked), as fast as the server takes it, until the server answers or closes the connection.
 */
async function flood(url: string, path: string, opts: { total: number; chunked?: boolean; headers?: Record<string, string> }): Promise<Flood> {
  const u = new URL(url);
  const socket: Socket = connect(Number(u.port), u.hostname);
  await once(socket, 'connect');
  let answer = '';
  let ended = false;
  const ends = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n\r\n')) resolve();
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  }).then(() => {
    ended = true;
  });
  const headers = {
    host: u.host,
    'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
    'x-slack-signature': 'v0=' + '0'.repeat(64),
    'content-type': 'application/json',
    ...(opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(opts.total) }),
    ...opts.headers,
  };
  socket.write(`POST ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
  const junk = Buffer.alloc(64 * 1024, 'x');
  const piece = opts.chunked ? Buffer.concat([Buffer.from(`${junk.length.toString(16)}\r\n`), junk, Buffer.from('\r\n')]) : junk;
  let written = 0;
  while (!ended && written < opts.total) {
    const more = socket.write(piece);
    written += junk.length;
    if (!more) await Promise.race([once(socket, 'drain').catch(() => {}), ends]);
  }
  await ends;
  socket.destroy();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  return { status, written };
}

describe('body caps: refused with 413 before anything buffers the body', () => {
  it('/slack/events: 300 MB announced with a junk signature → 413, the body is not read', async () => {
    const r = await flood(h.app.url, '/slack/events', { total: HUGE });
    expect(r.status).toBe(413);
    expect(r.written).toBeLessThan(READ_BOUND);
  });

  it('/slack/events: 300 MB streamed (chunked, no length) with a junk signature → 413 once past the cap', async () => {
    const r = await flood(h.app.url, '/slack/events', { total: HUGE, chunked: true });
    expect(r.status).toBe(413);
    expect(r.written).toBeLessThan(READ_BOUND);
  });

  it('/slack/events: just over the cap is refused, a signed request under it still works', async () => {
    const over = await flood(h.app.url, '/slack/events', { total: CHAT_MAX_BODY + 1 });
    expect(over.status).toBe(413);
    const ok = await sendSigned(h.app.url, slashBody('U0NOBODY', 'help', `${slack.url}/respond/1`), { secret: SECRET });
    expect(ok.status).toBe(200);
  });

  it('/api/messages (Teams): announced or streamed, 413; nothing reaches the connector', async () => {
    expect((await flood(h.app.url, '/api/messages', { total: HUGE })).status).toBe(413);
    const streamed = await flood(h.app.url, '/api/messages', { total: HUGE, chunked: true });
    expect(streamed.status).toBe(413);
    expect(streamed.written).toBeLessThan(READ_BOUND);
    expect(bf.calls).toEqual([]);
  });

  it('every other route: the REST API, the local channel, the my-IP link, an unknown path', async () => {
    for (const path of ['/api/v1/commands', '/api/v1/requests', '/api/local/rules', '/myip/abcdefghijklmnopqrstuvwxyz012345', '/healthz', '/nowhere']) {
      const announced = await flood(h.app.url, path, { total: HUGE });
      expect(announced.status, path).toBe(413);
      expect(announced.written, path).toBeLessThan(READ_BOUND);
    }
    // Chunked to a route that reads its body: counted as it arrives.
    const streamed = await flood(h.app.url, '/api/v1/commands', { total: HUGE, chunked: true, headers: { authorization: `Bearer ${'x'.repeat(40)}` } });
    // Unauthenticated: refused before the body is read, and the rest of it is not waited for.
    expect([401, 413]).toContain(streamed.status);
    expect(streamed.written).toBeLessThan(READ_BOUND);
    const local = await flood(h.app.url, '/api/v1/commands', { total: HUGE, chunked: true, headers: { 'x-jit-act-as': 'dave@contoso.com', 'x-jit-local-token': h.app.localToken! } });
    expect(local.status).toBe(413);
    expect(local.written).toBeLessThan(READ_BOUND);
    expect(MAX_BODY).toBeLessThan(CHAT_MAX_BODY);
    const all = await h.app.service.list(p('dave@contoso.com'), 'all');
    expect(all.kind === 'list' && all.requests).toEqual([]);
  });
});

describe('a modest body over the cap (a client that did not mean harm)', () => {
  it('gets its 413 while still sending (the rest is read and dropped), and the connection stays usable', async () => {
    // 70 KiB to the REST API (cap 64 KiB), sent in pieces after the answer has come: a server that
    // closed at once (the old behaviour) made the client's next write a connection reset, which
    // fetch reports as "fetch failed" instead of the 413.
    const u = new URL(h.app.url);
    const s = connect(Number(u.port), u.hostname);
    await once(s, 'connect');
    let answer = '';
    let failed: Error | null = null;
    let closed = false;
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', (e) => (failed = e));
    s.on('close', () => (closed = true));
    const total = 70 * 1024;
    s.write(`POST /api/v1/commands HTTP/1.1\r\nhost: ${u.host}\r\nx-jit-act-as: dave@contoso.com\r\nx-jit-local-token: ${h.app.localToken!}\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`);
    await waitFor('the 413', async () => (answer.includes('\r\n\r\n') ? true : null));
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer.toLowerCase()).not.toContain('connection: close');
    for (let sent = 0; sent < total; sent += 7 * 1024) {
      s.write(Buffer.alloc(Math.min(7 * 1024, total - sent), 'x'));
      await new Promise((r) => setTimeout(r, 20));
    }
    // The same connection answers the next request.
    const before = answer.length;
    s.write(`GET /healthz HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`);
    await waitFor('the next answer', async () => (answer.slice(before).includes('\r\n\r\n') || closed || failed ? true : null));
    expect(failed).toBeNull();
    expect(answer.slice(before)).toMatch(/^HTTP\/1\.1 200/);
    s.destroy();
    const all = await h.app.service.list(p('dave@contoso.com'), 'all');
    expect(all.kind === 'list' && all.requests).toEqual([]);
  });
});

describe('keep-alive', () => {
  it('an idle connection outlives the clients\' own idle time (undici 4 s), so the client closes first and never sends into a close', async () => {
    const u = new URL(h.app.url);
    const s = connect(Number(u.port), u.hostname);
    await once(s, 'connect');
    let answer = '';
    let closed = false;
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    s.write(`GET /healthz HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`);
    await waitFor('first answer', async () => (answer.includes('\r\n\r\n') ? true : null));
    await new Promise((r) => setTimeout(r, 7_000)); // past Node's default keepAliveTimeout (5 s, plus its 1 s buffer)
    expect(closed).toBe(false);
    const before = answer.length;
    s.write(`GET /healthz HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`);
    await waitFor('second answer', async () => (answer.slice(before).includes('\r\n\r\n') || closed ? true : null));
    expect(answer.slice(before)).toMatch(/^HTTP\/1\.1 200/);
    s.destroy();
  }, 20_000);
});

const opener = (url: () => string) => async () => {
  const u = new URL(url());
  const s = connect(Number(u.port), u.hostname);
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => {});
  return { s, closed, answer: () => answer };
};

describe('slow requests', () => {
  let slow: Harness;
  beforeAll(async () => {
    slow = await startHarness({}, { httpLimits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } });
  });
  afterAll(async () => {
    await slow?.close();
  });
  const open = opener(() => slow.app.url);

  it('headers that never finish (slowloris) and a body that trickles in are cut off (408), not held for minutes', async () => {
    const loris = await open();
    loris.s.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-a: ');
    const trickle = await open();
    // Authenticated, so the server waits for the body.
    const host = new URL(slow.app.url).host;
    trickle.s.write(`POST /api/v1/commands HTTP/1.1\r\nhost: ${host}\r\nx-jit-act-as: dave@contoso.com\r\nx-jit-local-token: ${slow.app.localToken!}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`);
    let sent = 0;
    const drip = setInterval(() => {
      if (trickle.s.writable && sent < 1000) {
        trickle.s.write('x');
        sent++;
      }
    }, 100);
    try {
      await Promise.all([loris.closed, trickle.closed]);
    } finally {
      clearInterval(drip);
    }
    expect(loris.answer()).toMatch(/^HTTP\/1\.1 408/);
    expect(trickle.answer()).toMatch(/^HTTP\/1\.1 408/);
    expect(sent).toBeLessThan(1000);
  }, 30_000);
});

describe('too many connections', () => {
  let capped: Harness;
  beforeAll(async () => {
    capped = await startHarness({}, { httpLimits: { maxConnections: 4 } });
  });
  afterAll(async () => {
    await capped?.close();
  });
  const open = opener(() => capped.app.url);

  it('connections beyond the cap are dropped at once; the server answers again when the others go', async () => {
    const held = await Promise.all([open(), open(), open(), open()]);
    const extra = await open();
    await extra.closed; // dropped by the server without an answer
    expect(extra.answer()).toBe('');
    for (const c of held) c.s.destroy();
    await waitFor('answers again', async () => (await fetch(`${capped.app.url}/healthz`).then((r) => r.ok, () => false)) || null);
  }, 30_000);
});
