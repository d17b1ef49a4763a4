// Redis restarted while grants are active: the bot reconnects, and every grant still closes on
// time (a Redis with AOF persistence, as docker-compose.yml and the embedded default run it).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, requestOf, sleep, startHarness, waitFor, type Harness } from './harness.js';

let redis: ChildProcess | undefined;
let h: Harness | undefined;
const dir = mkdtempSync(join(tmpdir(), 'jit-redis-restart-'));


async function startRedis(port: number): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', dir, '--hz', '100'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.end();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
    });
    if (ok) return p;
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

afterAll(async () => {
  await h?.app.stop().catch(() => {});
  redis?.kill('SIGKILL');
});

describe('Redis restarted while grants are active', () => {
  it('reconnects; grants still close on time; states stay consistent', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    h = await startHarness({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = requestOf((await h.cmd('alice@contoso.com', `rdp vm1 ${4 + i}s from 203.0.113.${80 + i}`)).reply).id;
      await h.cmd('bob@contoso.com', `approve ${id}`);
      ids.push(id);
    }
    expect((await h.rules()).filter((r) => ids.includes(r.requestId))).toHaveLength(3);
    // Restart Redis (SIGTERM: it syncs the AOF and exits), keep it down a moment, start it again.
    redis.kill('SIGTERM');
    await once(redis, 'exit');
    await sleep(500);
    redis = await startRedis(port);
    await waitFor('all closed', async () => (await h!.rules()).every((r) => !ids.includes(r.requestId)) || null, 20_000);
    for (const id of ids) expect((await h.app.service.get(id))!.status).toBe('expired');
  }, 40_000);
});
