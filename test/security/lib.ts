// Shared by the attack tests: REST calls with bearer tokens bound to the fixture principals
// (the tokens are configured hashed, as in production), and a Redis MONITOR that records the
// commands one server (one key prefix) sends while an attack runs.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
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

/**
 * MONITOR over a plain socket: ioredis' monitor mode can mistake the first monitor lines for the
 * answer to MONITOR when Redis is busy ("Command queue state error"), so the lines are read here.
 */
async function openMonitor(onCommand: (args: string[]) => void): Promise<() => void> {
  const url = new URL(REDIS_URL);
  const socket = connect({ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) });
  await once(socket, 'connect');
  if (url.password) socket.write(`AUTH ${decodeURIComponent(url.password)}\r\n`);
  socket.write('MONITOR\r\n');
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\r\n')) !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      // +1796300704.232180 [0 127.0.0.1:43876] "hgetall" "key" …
      if (!/^\+\d/.test(line)) continue;
      const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
      if (args.length > 0) onCommand(args);
    }
  });
  socket.on('error', () => {});
  return () => socket.destroy();
}

/** The Redis commands (name and arguments) that touched `prefix` while `fn` ran, seen with MONITOR. */
export async function redisCommandsDuring<T>(prefix: string, fn: () => Promise<T>): Promise<{ result: T; commands: string[][] }> {
  const commands: string[][] = [];
  const close = await openMonitor((args) => {
    if (args.some((a) => a.startsWith(`${prefix}:`))) commands.push(args);
  });
  // A marker command: once MONITOR has shown it, it is surely recording.
  const probe = new Redis(REDIS_URL);
  const marker = `${prefix}:monitor-probe`;
  try {
    for (let i = 0; i < 100 && !commands.some((c) => c.includes(marker)); i++) {
      await probe.get(marker);
      await new Promise((r) => setTimeout(r, 10));
    }
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
    close();
  }
}
