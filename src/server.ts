// The one HTTP server. Routes: GET /healthz and /readyz, the "my IP" link (/myip/<token>), and the
// local channel's views under /api/local/ (the simulated rules, the raw audit log, the audit CSV)
// and its login link (/login). Adapters mount their routes here: the REST API (/api/v1), /metrics,
// Slack (/slack/events), Teams (/api/messages) and the web console (/, /console/*). Local-channel
// routes need the local secret (see adapters/local/auth.ts). Before any route runs, a body larger
// than the route's cap is refused (413), and the server has request / header timeouts and a
// connection cap, so nobody unauthenticated can make it hold much memory or many sockets.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { JitService } from './app/service.js';
import type { AuditLog, NetworkGate } from './app/ports.js';
import { toCsv, type AuditRow } from './core/audit-export.js';
import { parseDuration } from './core/duration.js';
import { isJitError } from './core/errors.js';
import { renderText } from './core/reply.js';
import { parseSource, sourceAllowed } from './core/source.js';
import type { Logger } from './log.js';
import type { LocalAuth } from './adapters/local/auth.js';

export interface Health {
  redis(): Promise<boolean>;
  worker(): 'running' | 'stopped' | 'disabled';
  /** True once SIGTERM started the drain. */
  draining?(): boolean;
  /** True until start-up has finished (the local secret written, the first reconciler sweep done). */
  starting?(): boolean;
  /** Each enabled adapter: 'ok' or what is wrong. */
  adapters?(): Record<string, string>;
}

export interface ServerDeps {
  service: JitService;
  gate: NetworkGate;
  audit: AuditLog;
  health: Health;
  log: Logger;
  network: string;
  /** The local channel's secret keeper; absent when the local channel is off. */
  local?: LocalAuth;
  trustedProxies: string[];
  /** This server's base URL (for login links); known once it listens. */
  baseUrl?: () => string;
  limits?: Partial<HttpLimits>;
  /** Told about every request being handled (the drain waits for them). */
  track?: (handling: Promise<void>) => void;
}

/** Extra routes mounted by adapters: return true when the request was handled. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/** Body cap of every route that does not say otherwise (the REST API's JSON, form posts). */
export const MAX_BODY = 64 * 1024;
/**
 * Body cap of the chat platforms' webhooks (/slack/events, /api/messages). What they send this bot
 * is a few KB: a slash command, a button click (block_actions, which carries the clicked message:
 * one of the bot's own cards), a modal submission (the bot's small deny modal); a Teams activity
 * or invoke. 256 KiB leaves a wide margin for those and still bounds what an unauthenticated
 * sender can make the process hold per request.
 */
export const CHAT_MAX_BODY = 256 * 1024;
const BODY_LIMITS = new Map<string, number>([['/slack/events', CHAT_MAX_BODY], ['/api/messages', CHAT_MAX_BODY]]);

export interface HttpLimits {
  /** The whole request (headers and body) must arrive within this (Node's `requestTimeout`). */
  requestTimeoutMs: number;
  /** The headers must arrive within this (`headersTimeout`). */
  headersTimeoutMs: number;
  /** Connections beyond this are dropped (`maxConnections`). */
  maxConnections: number;
  /**
   * An idle keep-alive connection is closed after this (`keepAliveTimeout`). Longer than the idle
   * time of the clients and proxies in front (undici 4 s, load balancers 60 s), so the client
   * closes first: a server that closes a connection as the client sends on it makes the client
   * see ECONNRESET for a request that never arrived.
   */
  keepAliveTimeoutMs: number;
}
export const HTTP_LIMITS: HttpLimits = { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, maxConnections: 1000, keepAliveTimeoutMs: 65_000 };

/**
 * A refused body up to this size is read and dropped after the 413 (a "lingering close"), so a
 * client still sending it reads the answer instead of a connection reset; a larger one is cut.
 */
export const LINGER_BYTES = 1024 * 1024;

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const tooLarge = (limit: number) => new HttpError(413, `body larger than ${limit} bytes`);

/** 413 at once when the announced Content-Length is over the cap (nothing of the body is read). */
export function refuseDeclaredBody(req: IncomingMessage, limit: number): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(limit);
}

/**
 * The request body, at most `limit` bytes: a larger Content-Length is refused before reading,
 * and a chunked body is counted as it arrives and refused (413) as soon as it passes the limit;
 * the rest is never read (the connection is closed after the answer).
 */
export function readRaw(req: IncomingMessage, limit = MAX_BODY): Promise<Buffer> {
  refuseDeclaredBody(req, limit);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (b: Buffer) => {
      size += b.length;
      if (size > limit) {
        done();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(b);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<string> {
  return (await readRaw(req, limit)).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const linger = status === 413 && lingers(res);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    // The rest of a large refused body is not read: the connection closes after the answer.
    ...(status === 413 && !linger ? { connection: 'close' } : {}),
  });
  res.end(text);
  // A small one is read and dropped (Node discards it), bounded by the request timeout.
  if (linger) res.req.resume();
}

/** A 413 whose announced body is small enough to read and drop rather than reset the connection. */
function lingers(res: ServerResponse): boolean {
  const declared = Number(res.req?.headers['content-length'] ?? NaN);
  return Number.isFinite(declared) && declared <= LINGER_BYTES && !res.req.readableEnded && !res.req.isPaused();
}

/** A duration from a query parameter or body field (`7d`, `PT1H`), or 400 naming the field. */
export function durationParam(text: string, name: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new HttpError(400, `${name}: ${isJitError(e) ? e.message : 'not a duration'}`);
  }
}

/** Audit rows as a CSV download, named after the VM when there is one. */
export function sendAuditCsv(res: ServerResponse, rows: AuditRow[], target?: string): void {
  res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="jit-audit${target ? `-${target.replace(/[^a-z0-9-]/gi, '')}` : ''}.csv"`, 'cache-control': 'no-store' });
  res.end(toCsv(rows));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  });
  res.end(html);
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/**
 * One hop of a forwarding header as a bare IP address, or undefined. Proxies such as Azure
 * Application Gateway write the client's port too: `203.0.113.7:51234`, `[2001:db8::7]:51234`.
 * Anything but a single address (a list, a range, `*`, a name) is not an address.
 */
export function hopAddress(hop: string): string | undefined {
  let text = hop.trim();
  const withPort = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  if (withPort) {
    if (withPort[2] !== undefined && Number(withPort[2]) > 65535) return undefined;
    text = withPort[1]!;
  }
  // No zone ids (fe80::1%eth0): a network rule cannot use them.
  return isIP(text) !== 0 && !text.includes('%') ? text.replace(/^::ffff:(?=\d+\.)/i, '') : undefined;
}

/**
 * The address a request came from, as a single IP, or undefined when a forwarding header names
 * something else. `X-Forwarded-For` is honoured only when the peer is a trusted proxy; then the
 * right-most address that is not itself a trusted proxy is the client.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: string[]): string | undefined {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const trusted = (addr: string) => {
    try {
      return trustedProxies.length > 0 && sourceAllowed(parseSource(addr), trustedProxies);
    } catch {
      return false;
    }
  };
  if (!trusted(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const chain = (Array.isArray(header) ? header.join(',') : header ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = hopAddress(chain[i]!);
    if (hop === undefined) return undefined;
    if (!trusted(hop)) return hop;
  }
  return peer;
}

const LOGIN_HELP = (url: string) =>
  `<p>The console acts as anyone in the policy file, so it opens only for the person who started jit-bot.</p>
<p>Open the login link jit-bot printed when it started (<code>${escapeHtml(url)}/login?code=…</code>), or get a fresh one in a terminal on this machine:</p>
<pre>bin/jit login</pre>`;

/** The local channel's routes: the console, its API, the CLI's views, the login link. */
const isLocalPath = (path: string) => path === '/' || path === '/login' || path.startsWith('/console/') || path.startsWith('/api/local/');

export function createHttpServer(deps: ServerDeps, extraRoutes: Route[] = []): Server {
  const { service, log } = deps;
  const limits = { ...HTTP_LIMITS, ...deps.limits };
  const baseUrl = () => deps.baseUrl?.() ?? 'http://127.0.0.1:3000';

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    // Every route has a body cap; an announced body over it is refused before anything reads it.
    refuseDeclaredBody(req, BODY_LIMITS.get(path) ?? MAX_BODY);

    // Liveness: the process answers. Redis or a chat platform being down is not a reason to restart it.
    if (req.method === 'GET' && path === '/healthz') {
      sendJson(res, 200, { status: 'ok', worker: deps.health.worker(), network: deps.network });
      return;
    }
    // Readiness: start-up finished, Redis answers, the worker runs (where enabled), every adapter is usable, not draining.
    if (req.method === 'GET' && path === '/readyz') {
      const redis = await deps.health.redis().catch(() => false);
      const worker = deps.health.worker();
      const draining = deps.health.draining?.() ?? false;
      const starting = deps.health.starting?.() ?? false;
      const adapters = deps.health.adapters?.() ?? {};
      const ok = redis && worker !== 'stopped' && !draining && !starting && Object.values(adapters).every((v) => v === 'ok');
      sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : draining ? 'draining' : starting ? 'starting' : 'not ready', redis: redis ? 'up' : 'down', worker, ...adapters });
      return;
    }

    const myip = /^\/myip\/([A-Za-z0-9_-]{16,64})$/.exec(path);
    if (myip) {
      const token = myip[1]!;
      if (req.method !== 'GET' && req.method !== 'POST') {
        res.writeHead(405, { allow: 'GET, POST' }).end();
        return;
      }
      // A GET never consumes the link: chat apps fetch links to preview them.
      const request = await service.describeSourceToken(token);
      if (!request) return sendHtml(res, req.method === 'GET' ? 410 : 400, page('Link expired', '<p>This link has expired or was already used. Make the request again in chat.</p>'));
      const addr = clientAddress(req, deps.trustedProxies);
      // Checked before the link is used up: a proxy that forwards something other than one address leaves it usable.
      if (addr === undefined) {
        log.warn('myip: the forwarding header does not name one client address (JIT_TRUSTED_PROXIES)', { request: request.id, xff: String(req.headers['x-forwarded-for'] ?? '').slice(0, 200) });
        return sendHtml(res, 400, page('Address not recognised', '<p>Your address could not be read from the proxy in front of jit-bot (its X-Forwarded-For is not a single IP address). The link was not used; ask your administrator, or make the request again with <code>from &lt;your address&gt;</code>.</p>'));
      }
      if (req.method === 'GET') {
        return sendHtml(
          res,
          200,
          page(
            `Confirm your address for ${escapeHtml(request.id)}`,
            `<p>Request <b>${escapeHtml(request.id)}</b>: ${escapeHtml(request.target)}, ports ${escapeHtml(request.ports.map((p) => p.port).join(', '))}.</p>
<p>Your address as this server sees it: <b>${escapeHtml(addr)}</b>. Access will be allowed from this address only.</p>
<form method="post"><button type="submit">Use ${escapeHtml(addr)}</button></form>`,
          ),
        );
      }
      const reply = await service.recordSource(token, addr);
      const ok = reply.kind !== 'rejected';
      return sendHtml(res, ok ? 200 : 400, page(ok ? 'Address recorded' : 'Not accepted', `<p>${escapeHtml(renderText(reply, 'jit'))}</p><p>You can close this page.</p>`));
    }

    if (isLocalPath(path)) {
      if (!deps.local) {
        if (path.startsWith('/api/local/')) throw new HttpError(404, 'the local channel is disabled (JIT_LOCAL_CHANNEL)');
        return sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
      }
      if (path === '/login') return login(deps.local, req, res, url);
      try {
        deps.local.check(req);
      } catch (e) {
        // The console page itself says how to get in.
        if (e instanceof HttpError && e.status === 401 && req.method === 'GET' && path === '/') return sendHtml(res, 401, page('Log in to the jit-bot console', LOGIN_HELP(baseUrl())));
        throw e;
      }
      if (path.startsWith('/api/local/')) return localApi(deps.local, req, res, url);
    }

    for (const route of extraRoutes) if (await route(req, res, url)) return;
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  }

  /** GET /login?code=…: a one-time code from the printed link becomes the console's cookie. */
  async function login(local: LocalAuth, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    local.checkPlace(req);
    const code = url.searchParams.get('code') ?? '';
    if (!local.redeem(code)) {
      return sendHtml(res, 401, page('This login link does not work', `<p>It was already used, or it expired, or it is from an earlier run of jit-bot.</p>${LOGIN_HELP(baseUrl())}`));
    }
    res.writeHead(303, { location: '/', 'set-cookie': local.sessionCookie(req), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end();
  }

  async function localApi(local: LocalAuth, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    // A fresh one-time login link for the browser (what `bin/jit login` prints).
    if (req.method === 'POST' && path === '/api/local/login-link') return sendJson(res, 200, { url: local.loginLink(baseUrl()) });
    if (req.method === 'GET' && path === '/api/local/rules') return sendJson(res, 200, { rules: await deps.gate.list() });
    if (req.method === 'GET' && path === '/api/local/audit.csv') {
      // The audit export as a download: ?as=<principal>[&target=<vm>][&since=<duration>] (default 7d).
      const as = url.searchParams.get('as');
      if (!as || !as.includes('@')) throw new HttpError(400, '"as" must be the principal to act as (alice@contoso.com)');
      const target = url.searchParams.get('target') ?? undefined;
      const sinceMs = durationParam(url.searchParams.get('since') ?? '7d', 'since');
      let rows;
      try {
        rows = (await service.auditRows(as, { ...(target ? { target } : {}), since: Date.now() - sinceMs })).rows;
      } catch (e) {
        // As the REST API answers: a read limit is 429, an unknown VM 404, other refusals 400.
        if (isJitError(e)) throw new HttpError(e.code === 'rate_limited' ? 429 : e.code === 'unknown_target' ? 404 : 400, e.message);
        throw e;
      }
      return sendAuditCsv(res, rows, target);
    }
    if (req.method === 'GET' && path === '/api/local/audit') {
      const requestId = url.searchParams.get('request') ?? undefined;
      const since = url.searchParams.get('since');
      return sendJson(res, 200, { events: await deps.audit.list({ ...(requestId ? { requestId } : {}), ...(since ? { since: Number(since) } : {}) }) });
    }
    throw new HttpError(404, `no route for ${req.method} ${path}`);
  }

  const server = createServer({ requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) }, (req, res) => {
    const handling = handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      log.error('request failed', { path: req.url?.replace(/\/myip\/[^/?]+/, '/myip/…'), err });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    });
    deps.track?.(handling);
  });
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return server;
}

/** Default texts of the pages the Teams manifest links to (developer.privacyUrl / termsOfUseUrl). */
export const DEFAULT_PRIVACY_TEXT = `jit-bot is run by your organisation to grant time-limited network access to its virtual machines.

It keeps, for each access request: who asked (your sign-in name or email as the chat platform gives it, and your Slack or Teams user id), the machine, ports, source address, duration, justification, and who approved, denied, extended or closed it, with times. This is kept in your organisation's Redis and in an append-only audit log, and posted to the audit channel your administrators chose.

It sends messages through Slack or Microsoft Teams and changes network rules in your organisation's Azure subscription. It shares nothing with anyone else. Ask your administrators how long the audit log is kept.`;
export const DEFAULT_TERMS_TEXT = `jit-bot is an internal tool of your organisation. Request only access you need for your work and are allowed to have. Every request, decision and network change is recorded in an audit log and may be reviewed.

Access is granted for the duration shown and closed automatically; the administrators may close it at any time.`;

/** GET /privacy and /terms: the pages the Teams app manifest links to (text from JIT_PRIVACY_TEXT / JIT_TERMS_TEXT). */
export function legalPages(texts: { privacy: string; terms: string }): Route {
  const render = (title: string, text: string) =>
    page(
      title,
      text
        .split(/\n\s*\n/)
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => `<p>${escapeHtml(p)}</p>`)
        .join('\n'),
    );
  const pages: Record<string, string> = { '/privacy': render('jit-bot: privacy', texts.privacy), '/terms': render('jit-bot: terms of use', texts.terms) };
  return async (req, res, url) => {
    const html = pages[url.pathname];
    if (html === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only');
      return true;
    }
    sendHtml(res, 200, req.method === 'HEAD' ? '' : html);
    return true;
  };
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}button{font-size:1rem;padding:.6rem 1.2rem}</style></head>
<body><h1>${title}</h1>${body}</body></html>`;
}
