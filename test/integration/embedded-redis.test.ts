// ensureRedis: REDIS_URL as is, the running Redis on the probe address, a private redis-server,
// or one clear error.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/connection.js';
import { ensureRedis, pingRedis } from '../../src/adapters/redis/embedded.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'jit-emb-'));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A TCP port nothing listens on (bound then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

describe('ensureRedis', () => {
  it('returns a given url untouched, starts nothing', async () => {
    const logs: string[] = [];
    const res = await ensureRedis({ url: 'redis://example.invalid:6390/2', dataDir: tempDir(), log: (m) => logs.push(m) });
    expect(res.url).toBe('redis://example.invalid:6390/2');
    expect(res.embedded).toBe(false);
    await res.stop();
  });

  it('uses the Redis answering on the probe address', async () => {
    const u = new URL(REDIS_URL);
    if (u.protocol !== 'redis:') return; // only meaningful for a plain TCP Redis
    const dir = tempDir();
    const res = await ensureRedis({ dataDir: dir, log: () => {}, probe: { host: u.hostname, port: Number(u.port || 6379) } });
    expect(res).toMatchObject({ url: `redis://${u.hostname}:${u.port || 6379}`, embedded: false });
    expect(existsSync(join(dir, 'redis'))).toBe(false);
    await res.stop();
  });

  it('nothing answering and no redis-server: one clear message with the ways out', async () => {
    const port = await closedPort();
    const err = await ensureRedis({
      dataDir: tempDir(),
      log: () => {},
      probe: { host: '127.0.0.1', port },
      redisServerBin: 'redis-server-does-not-exist',
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`No Redis answered on 127.0.0.1:${port}`);
    expect(msg).toContain('no redis-server-does-not-exist was found on PATH');
    expect(msg).toContain('apt-get install redis-server');
    expect(msg).toContain('brew install redis');
    expect(msg).toContain('docker compose up -d redis');
    expect(msg).toContain('REDIS_URL=redis://host:6379');
  });

  it('a closed probe port is detected on the refusal, not by waiting for the probe timeout', async () => {
    // With a 10-minute probe timeout, only the refusal can end it within the test's own timeout.
    expect(await pingRedis({ host: '127.0.0.1', port: await closedPort() }, 600_000)).toBe(false);
  });

  it('spawns a private redis-server on a unix socket (AOF, noeviction), and stop() ends it', async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const res = await ensureRedis({ dataDir: dir, log: (m) => logs.push(m), probe: false, redisServerBin: '/usr/bin/redis-server' });
    const socket = join(dir, 'redis', 'redis.sock');
    try {
      expect(res.embedded).toBe(true);
      expect(res.url).toBe(`unix://${socket}`);
      expect(logs.join('\n')).toContain('starting a private');
      expect(statSync(socket).mode & 0o777).toBe(0o700);

      const r = createRedis(res.url);
      try {
        expect(await r.ping()).toBe('PONG');
        await r.set('jit:embedded:probe', 'hello');
        expect(await r.get('jit:embedded:probe')).toBe('hello');
        expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
        expect(await r.config('GET', 'port')).toEqual(['port', '0']);
      } finally {
        r.disconnect();
      }
      // the AOF lives in the data dir
      const files = readdirSync(join(dir, 'redis'), { recursive: true }).map(String);
      expect(files.some((f) => /appendonly/.test(f))).toBe(true);

      // a second start on the same data dir shares the running server instead of starting another
      const again = await ensureRedis({ dataDir: dir, log: () => {}, probe: false });
      expect(again).toMatchObject({ url: res.url, embedded: false });
      await again.stop();
      expect(await pingRedis({ path: socket }, 500)).toBe(true);
    } finally {
      await res.stop();
    }
    expect(await pingRedis({ path: socket }, 500)).toBe(false);
    expect(existsSync(socket)).toBe(false); // a clean shutdown removes the socket
    await res.stop(); // idempotent

    // data survives a restart (AOF replay)
    const res2 = await ensureRedis({ dataDir: dir, log: () => {}, probe: false });
    try {
      expect(res2.embedded).toBe(true);
      const r = createRedis(res2.url);
      try {
        expect(await r.get('jit:embedded:probe')).toBe('hello');
      } finally {
        r.disconnect();
      }
    } finally {
      await res2.stop();
    }
  });

  it('a server that fails to start is reported with its output', async () => {
    const dir = tempDir();
    // /bin/false stands in for a redis-server that exits at once
    const err = await ensureRedis({ dataDir: dir, log: () => {}, probe: false, redisServerBin: '/bin/false' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/redis-server exited \(1\) before answering PING/);
  });
});
