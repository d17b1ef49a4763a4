// Who may use the local channel (the web console, /api/local/*, `X-Jit-Act-As` on /api/v1): the
// person who started jit-bot, proved by a secret, never by the peer address alone (a same-host
// reverse proxy or tunnel makes every peer 127.0.0.1).
//
// - A random token is made at each start and written to `<JIT_DATA_DIR>/local-token`, readable by
//   the user only (0600). The CLI sends it as `X-Jit-Local-Token`.
// - The browser gets it through a one-time login link printed at start (`/login?code=…`; the CLI's
//   `login` prints a fresh one): the code works once and sets an HttpOnly SameSite=Strict cookie.
// - Every local-channel request must also come straight from a loopback peer (no `Forwarded`,
//   `X-Forwarded-*`, `X-Real-IP` or `Via` header), name this server by a loopback Host with its port
//   (DNS rebinding), and not be cross-site (`Origin`, `Sec-Fetch-Site`).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, rename, unlink, writeFile, readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { HttpError } from '../../server.js';

export const LOCAL_TOKEN_HEADER = 'x-jit-local-token';
export const LOCAL_TOKEN_FILE = 'local-token';
/** How long a login link's code stays usable (it works once in any case). */
export const LOGIN_CODE_TTL_MS = 60 * 60_000;
const MAX_CODES = 100;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The first proxy header a request carries, if any: a request that went through a proxy is not local. */
export function proxyHeader(req: IncomingMessage): string | undefined {
  for (const name of Object.keys(req.headers)) {
    if (name === 'forwarded' || name === 'via' || name === 'x-real-ip' || name.startsWith('x-forwarded-')) return name;
  }
  return undefined;
}

const isLoopbackPeer = (req: IncomingMessage): boolean => {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  return peer === '::1' || peer.startsWith('127.');
};

/** The Host header when it names this server by a loopback name and the port it listens on; else undefined. */
export function loopbackHost(req: IncomingMessage): string | undefined {
  const host = (req.headers.host ?? '').toLowerCase();
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m || !LOOPBACK_HOSTS.has(m[1]!)) return undefined;
  const port = req.socket.localPort;
  if (m[2] === undefined ? port !== 80 : Number(m[2]) !== port) return undefined;
  return host;
}

/**
 * Refuses (403) what a request straight from the local user never looks like: a non-loopback peer,
 * a proxy header, a Host other than 127.0.0.1 / [::1] / localhost with this server's port, a
 * cross-site `Origin` or `Sec-Fetch-Site`. Shared by the local channel and unauthenticated Teams mode.
 */
export function refuseNonLocal(req: IncomingMessage, what: string): void {
  if (!isLoopbackPeer(req)) throw new HttpError(403, `${what} answers loopback peers only`);
  const proxy = proxyHeader(req);
  if (proxy) throw new HttpError(403, `${what} does not accept proxied requests (${proxy} header)`);
  const host = loopbackHost(req);
  if (!host) throw new HttpError(403, `${what} answers only Host 127.0.0.1, [::1] or localhost with this server's port`);
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) throw new HttpError(403, `${what} refuses cross-origin requests`);
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') throw new HttpError(403, `${what} refuses cross-site requests`);
}

/** Cookie values and header values compared in constant time. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class LocalAuth {
  private readonly codes = new Map<string, number>();
  private readonly session: string;

  private constructor(
    /** The secret of this run; the CLI reads it from `file`. */
    readonly token: string,
    readonly file: string,
    private readonly now: () => number,
  ) {
    this.session = createHmac('sha256', token).update('jit-bot console session').digest('base64url');
  }

  /** Makes this run's token; `publish` writes it for the CLI. */
  static create(dataDir: string, now: () => number = Date.now): LocalAuth {
    return new LocalAuth(randomBytes(32).toString('base64url'), join(dataDir, LOCAL_TOKEN_FILE), now);
  }

  /**
   * Writes the token, 0600, to `<dataDir>/local-token`, replacing an older one: called once the
   * server listens, so a second start that fails (port in use) leaves the running one's file alone.
   */
  async publish(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    // A fresh file created 0600 then renamed over the old one: never a moment where it is readable by others.
    const tmp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${this.token}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, this.file);
  }

  /** Removes the token file if it is still this run's. */
  async remove(): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch(() => '');
    if (text.trim() === this.token) await unlink(this.file).catch(() => {});
  }

  /** The cookie's name: per port, since browsers share cookies between the ports of a host. */
  cookieName(req: IncomingMessage): string {
    return `jit_local_${req.socket.localPort ?? 0}`;
  }

  /** A one-time login link for the browser. */
  loginLink(baseUrl: string): string {
    const now = this.now();
    for (const [code, until] of this.codes) if (until <= now || this.codes.size >= MAX_CODES) this.codes.delete(code);
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, now + LOGIN_CODE_TTL_MS);
    return `${baseUrl}/login?code=${code}`;
  }

  /** Uses up a login code: true once per code, within its lifetime. */
  redeem(code: string): boolean {
    const until = this.codes.get(code);
    if (until === undefined) return false;
    this.codes.delete(code);
    return until > this.now();
  }

  /** The Set-Cookie value a redeemed code gives the browser. */
  sessionCookie(req: IncomingMessage): string {
    return `${this.cookieName(req)}=${this.session}; Path=/; HttpOnly; SameSite=Strict`;
  }

  /** How the request proves it is the local user, or undefined. */
  credential(req: IncomingMessage): 'token' | 'cookie' | undefined {
    const header = req.headers[LOCAL_TOKEN_HEADER];
    if (typeof header === 'string' && same(header.trim(), this.token)) return 'token';
    const c = cookie(req, this.cookieName(req));
    if (c !== undefined && same(c, this.session)) return 'cookie';
    return undefined;
  }

  /** Throws 403 for a request that is not straight from this machine's user agent (see refuseNonLocal). */
  checkPlace(req: IncomingMessage): void {
    refuseNonLocal(req, 'the local channel');
  }

  /** Throws 403 for a request that is not straight from this machine's user agent, 401 without the secret. */
  check(req: IncomingMessage): void {
    this.checkPlace(req);
    if (!this.credential(req)) {
      throw new HttpError(401, `the local channel needs its secret: the ${LOCAL_TOKEN_HEADER} header (the CLI reads it from ${LOCAL_TOKEN_FILE} in the data directory) or the console's login cookie (open the login link jit-bot printed at start, or run: bin/jit login)`);
    }
  }
}
