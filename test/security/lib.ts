// Shared by the attack tests: REST calls with bearer tokens bound to the fixture principals
// (the tokens are configured hashed, as in production), and a Redis MONITOR that records the
// commands one server (one key prefix) sends while an attack runs.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { REDIS_URL, type Harness } from '../integration/harness.js';

export const TOKENS = {
  alice: 'jit_sec-alice-0123456789abcdefghijkl',
  bob: 'jit_sec-bob-0123456789abcdefghijklmn',
  carol: 'jit_sec-carol-0123456789abcdefghijkl',
  dave: 'jit_sec-dave-0123456789abcdefghijklm',
  erin: 'jit_sec-erin-0123456789abcdefghijklm',
  mallory: 'jit_sec-mallory-0123456789abcdefghij',
} as const;
export type Who = keyof typeof TOKENS;

const hash = (t: string) => createHash('sha256').update(t).digest('hex');
/** JIT_API_TOKENS for every fixture principal. */
export const API_TOKENS = Object.entries(TOKENS).map(([who, t]) => `${who}@contoso.com=sha256:${hash(t)}`).join(',');
export const principal = (who: Who) => `${who}@contoso.com`;

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
  raw: string;
}

export async function api(h: Harness, who: Who, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${h.app.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKENS[who]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const raw = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    json = { text: raw };
  }
  return { status: res.status, json, raw };
}

/** Records every Redis command that touches a key under `prefix` while `fn` runs. */
export async function redisCommandsDuring<T>(prefix: string, fn: () => Promise<T>): Promise<{ result: T; commands: string[][] }> {
  const client = new Redis(REDIS_URL);
  const monitor = await client.monitor();
  const commands: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((a) => a.startsWith(`${prefix}:`))) commands.push(args);
  });
  // A marker command: once MONITOR has shown it, it is surely recording.
  const probe = new Redis(REDIS_URL);
  const marker = `${prefix}:monitor-probe`;
  try {
    await probe.get(marker);
    for (let i = 0; i < 100 && !commands.some((c) => c.includes(marker)); i++) await new Promise((r) => setTimeout(r, 10));
    commands.length = 0;
    const result = await fn();
    // And one after: everything `fn` sent came before it.
    const end = `${prefix}:monitor-end`;
    await probe.get(end);
    for (let i = 0; i < 200 && !commands.some((c) => c.includes(end)); i++) await new Promise((r) => setTimeout(r, 10));
    const idx = commands.findIndex((c) => c.includes(end));
    return { result, commands: idx === -1 ? commands : commands.slice(0, idx) };
  } finally {
    probe.disconnect();
    monitor.disconnect();
    client.disconnect();
  }
}
