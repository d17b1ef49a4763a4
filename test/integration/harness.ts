// Starts the real server (startJit) against the real Redis, under a key prefix of its own.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startJit, type RunningJit, type StartOptions } from '../../src/bootstrap.js';
import type { Reply } from '../../src/core/reply.js';
import type { AccessRequest, AppliedRule, AuditEvent } from '../../src/core/types.js';
import { silentLogger } from '../../src/log.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { p } from '../fixtures/ids.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface Harness {
  app: RunningJit;
  prefix: string;
  dir: string;
  cmd(as: string, text: string): Promise<{ reply: Reply; text: string }>;
  rules(): Promise<AppliedRule[]>;
  audit(requestId?: string): Promise<AuditEvent[]>;
  get(id: string): Promise<AccessRequest | null>;
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}, opts: Omit<StartOptions, 'env'> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-test-'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, TEST_POLICY_YAML);
  const prefix = `test-${Math.random().toString(36).slice(2, 10)}`;
  const app = await startJit({
    env: {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL,
      JIT_KEY_PREFIX: prefix,
      JIT_DATA_DIR: dir,
      JIT_POLICY_FILE: policy,
      JIT_MIN_DURATION: '1s',
      // Suites create many requests quickly; the abuse limits have their own suite.
      JIT_REQUEST_RATE: 'off',
      JIT_READ_RATE: 'off',
      JIT_AUDIT_RATE: 'off',
      JIT_MAX_ACTIVE_PER_PRINCIPAL: '0',
      JIT_MAX_ACTIVE_PER_TARGET: '0',
      // Suites drive the server through the local channel (its secret is app.localToken), also
      // beside Slack, Teams or PUBLIC_URL where it is off by default.
      JIT_LOCAL_CHANNEL: 'true',
      ...env,
    },
    log: silentLogger,
    ...opts,
  });
  const json = async <T>(path: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(app.url + path, { ...init, headers: { ...localHeaders(app), ...(init?.headers as Record<string, string> | undefined) } });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  return {
    app,
    prefix,
    dir,
    // Commands go through the REST API as the local channel does (a refused command answers 4xx with its reply).
    cmd: async (as, text) => {
      const res = await fetch(`${app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': as, ...localHeaders(app) }, body: JSON.stringify({ text }) });
      const body = (await res.json()) as { reply?: Reply; text?: string; error?: string };
      if (!body.reply) throw new Error(`/api/v1/commands: HTTP ${res.status} ${body.error ?? ''}`);
      return { reply: body.reply, text: body.text ?? '' };
    },
    rules: async () => (await json<{ rules: AppliedRule[] }>('/api/local/rules')).rules,
    audit: async (requestId) => (await json<{ events: AuditEvent[] }>(`/api/local/audit${requestId ? `?request=${requestId}` : ''}`)).events,
    get: async (id) => {
      const reply = await app.service.execute(p('dave@contoso.com'), `status ${id}`, { via: 'test' });
      return reply.kind === 'status' ? reply.request : null;
    },
    async close() {
      await app.stop();
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The local channel's secret header for `app` (none when the local channel is off). */
export function localHeaders(app: RunningJit): Record<string, string> {
  return app.localToken ? { 'x-jit-local-token': app.localToken } : {};
}

export async function deleteKeys(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL);
  try {
    for (const pattern of [`${prefix}:*`, `${prefix}-bull:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length) await r.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    r.disconnect();
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on 127.0.0.1 right now (for servers a test starts as child processes). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function requestOf(reply: Reply): AccessRequest {
  if ('request' in reply) return reply.request;
  throw new Error(`reply has no request: ${JSON.stringify(reply)}`);
}
