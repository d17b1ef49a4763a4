// `npm test` needs a Redis. When nothing answers on REDIS_URL (default 127.0.0.1:6379) and
// redis-server is on the PATH, start a private one for this run (the same start-up code as the
// embedded Redis of `npm start`: a TCP port on 127.0.0.1 here, in memory) and stop it after.
// Test files read REDIS_URL from the environment; the workers are started after this setup with
// a copy of process.env, so setting it here reaches every file.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRedis } from '../src/adapters/redis/connection.js';
import { findExecutable, startRedisServer } from '../src/adapters/redis/embedded.js';

async function answers(url: string): Promise<boolean> {
  try {
    const r = await openRedis(url, { label: 'REDIS_URL', timeoutMs: 3_000, onError: () => {} });
    r.disconnect();
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  const wanted = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  if (await answers(wanted)) {
    process.env.REDIS_URL = wanted;
    return undefined;
  }
  const bin = findExecutable('redis-server');
  if (!bin) {
    throw new Error(
      `The tests need a Redis: nothing answers on ${wanted} and no redis-server is on PATH. ` +
        'Install Redis (apt-get install redis-server / brew install redis) or set REDIS_URL.',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'jit-test-redis-'));
  const server = await startRedisServer({ bin, dir, listen: { port: await freePort() }, persist: false });
  process.env.REDIS_URL = server.url;
  process.stderr.write(`[test setup] nothing answered on ${wanted}: started a private redis-server at ${server.url} for this run\n`);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
