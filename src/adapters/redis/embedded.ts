// The embedded default: use REDIS_URL if set, else a Redis already answering on 127.0.0.1:6379,
// else a private redis-server on a unix socket under the data dir (AOF on, noeviction).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export interface EnsureRedisOptions {
  /** REDIS_URL: used as is when given. */
  url?: string;
  /** JIT_DATA_DIR: the private server lives in `<dataDir>/redis`. */
  dataDir: string;
  log: (msg: string) => void;
  /** Where to look for a running Redis before spawning one; `false` skips the probe. Default 127.0.0.1:6379. */
  probe?: false | { host: string; port: number };
  /** Binary name (looked up on PATH) or path. Default `redis-server`. */
  redisServerBin?: string;
  /** How long the private server may take to answer PING. Default 10 s. */
  startTimeoutMs?: number;
}

export interface EnsuredRedis {
  url: string;
  /** Stops the private server (waits for it to exit); a no-op otherwise. */
  stop: () => Promise<void>;
  /** True when this call started a private redis-server. */
  embedded: boolean;
}

const DEFAULT_PROBE = { host: '127.0.0.1', port: 6379 };
const noop = async () => {};

export async function ensureRedis(opts: EnsureRedisOptions): Promise<EnsuredRedis> {
  if (opts.url) return { url: opts.url, stop: noop, embedded: false };

  const probe = opts.probe === undefined ? DEFAULT_PROBE : opts.probe;
  if (probe && (await pingRedis({ host: probe.host, port: probe.port }, 500))) {
    opts.log(`REDIS_URL not set; using the Redis answering on ${probe.host}:${probe.port}`);
    return { url: `redis://${probe.host}:${probe.port}`, stop: noop, embedded: false };
  }

  // Absolute: redis-server changes into --dir before it binds the socket, so a relative
  // JIT_DATA_DIR (the default `data`) would name a socket path that does not exist from there.
  const dir = resolve(opts.dataDir, 'redis');
  const socket = join(dir, 'redis.sock');
  // A private server from an earlier start that is still running: share it rather than start a
  // second server writing the same AOF.
  if (existsSync(socket) && (await pingRedis({ path: socket }, 500))) {
    opts.log(`REDIS_URL not set; using the private redis-server already running on ${socket}`);
    return { url: `unix://${socket}`, stop: noop, embedded: false };
  }

  const bin = opts.redisServerBin ?? 'redis-server';
  const binPath = findExecutable(bin);
  if (!binPath) {
    const where = probe ? `No Redis answered on ${probe.host}:${probe.port}` : 'REDIS_URL is not set';
    throw new Error(
      `${where} and no ${bin} was found on PATH. Install Redis (apt-get install redis-server / brew install redis), ` +
        `or start one with \`docker compose up -d redis\`, or set REDIS_URL=redis://host:6379.`,
    );
  }
  // sun_path is 108 bytes on Linux (104 on macOS).
  if (Buffer.byteLength(socket) > 100) {
    throw new Error(
      `JIT_DATA_DIR is too long for a unix socket (${socket}); use a shorter JIT_DATA_DIR or set REDIS_URL=redis://host:6379.`,
    );
  }

  opts.log(`REDIS_URL not set${probe ? ` and no Redis on ${probe.host}:${probe.port}` : ''}; starting a private ${binPath} in ${dir}`);
  return startRedisServer({ bin: binPath, dir, listen: { socket }, persist: true, ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}) });
}

export interface RedisServerOptions {
  /** Path of the redis-server binary. */
  bin: string;
  /** Its working directory (AOF, logs); created 0700 if missing. */
  dir: string;
  /** A unix socket only (TCP off), or a TCP port on 127.0.0.1 only. */
  listen: { socket: string } | { port: number };
  /** AOF on (fsync every second): what jit-bot's data needs. Off: memory only (tests). */
  persist: boolean;
  /** How long it may take to answer PING. Default 10 s. */
  startTimeoutMs?: number;
}

/**
 * Starts a redis-server child process and waits until it answers PING: the private server of
 * `npm start` (unix socket, AOF) and of `npm test` (test/global-setup.ts: a TCP port, in memory).
 */
export async function startRedisServer(opts: RedisServerOptions): Promise<EnsuredRedis> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const where: { path: string } | { host: string; port: number } =
    'socket' in opts.listen ? { path: resolve(opts.listen.socket) } : { host: '127.0.0.1', port: opts.listen.port };
  const args = [
    ...('path' in where
      ? ['--port', '0', '--unixsocket', where.path, '--unixsocketperm', '700']
      : ['--port', String(where.port), '--bind', '127.0.0.1']),
    '--dir', dir,
    '--appendonly', opts.persist ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction',
    // Blocked-client timeouts (BullMQ's delayed jobs) are checked at `hz`: 100 makes a revocation
    // fire within ~10 ms of its time instead of ~100 ms (docs/benchmarks.md).
    '--hz', '100',
    '--save', '',
  ];
  const child = spawn(opts.bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else {
      child.once('exit', () => resolve());
      child.once('error', () => resolve()); // a failed spawn may never emit 'exit'
    }
  });
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', killOnExit);

  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  try {
    await waitForPing(child, where, timeoutMs, () => output);
  } catch (err) {
    process.off('exit', killOnExit);
    child.kill('SIGKILL');
    await exited;
    throw err;
  }

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // redis-server shuts down cleanly on SIGTERM (fsyncs the AOF)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return { url: 'path' in where ? `unix://${where.path}` : `redis://127.0.0.1:${where.port}`, stop, embedded: true };
}

async function waitForPing(child: ChildProcess, where: { path: string } | { host: string; port: number }, timeoutMs: number, output: () => string): Promise<void> {
  const name = 'path' in where ? where.path : `${where.host}:${where.port}`;
  const until = Date.now() + timeoutMs;
  let spawnError: Error | null = null;
  child.once('error', (e) => (spawnError = e));
  for (;;) {
    if (spawnError) throw new Error(`could not start redis-server: ${(spawnError as Error).message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}) before answering PING. Its output:\n${output().trim()}`);
    }
    if ((!('path' in where) || existsSync(where.path)) && (await pingRedis(where, 300))) return;
    if (Date.now() > until) {
      throw new Error(`redis-server did not answer PING on ${name} within ${timeoutMs} ms. Its output:\n${output().trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when something answers `+PONG` to an inline PING within `timeoutMs`. */
export function pingRedis(where: { host: string; port: number } | { path: string }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = 'path' in where ? connect({ path: where.path }) : connect({ host: where.host, port: where.port });
    let buf = '';
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.once('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) finish(buf.startsWith('+PONG'));
    });
    sock.once('error', () => finish(false));
    sock.once('close', () => finish(false));
  });
}

/** `bin` if it is a path to an executable, else the first executable `bin` in a PATH directory. */
export function findExecutable(bin: string): string | null {
  const isExec = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (bin.includes('/') || isAbsolute(bin)) return isExec(bin) ? bin : null;
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    const p = join(d, bin);
    if (isExec(p)) return p;
  }
  return null;
}
