// The one HTTP server. Routes: GET /healthz and /readyz, the "my IP" link (/myip/<token>), and the
// local channel's views under /api/local/ (the simulated rules, the raw audit log, the audit CSV)
// and its login link (/login). Adapters mount their routes here: the REST API (/api/v1), /metrics,
// Slack (/slack/events), Teams (/api/messages) and the web console (/, /console/*). Local-channel
// routes need the local secret (see adapters/local/auth.ts). Before any route runs, a body larger
// than the route's cap is refused (413), and the server has request / header timeouts and a
// connection cap, so nobody unauthenticated can make it hold much memory or many sockets. Reading a
// body within its cap, the answers and the client's address are in http-io.ts; /privacy and /terms
// in legal.ts (both re-exported here).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { JitService } from './app/service.js';
import type { AuditLog, NetworkGate } from './app/ports.js';
import { parsePrincipal } from './core/ids.js';
import { isJitError } from './core/errors.js';
import { renderText } from './core/reply.js';
import type { Logger } from './log.js';
import type { LocalAuth } from './adapters/local/auth.js';
import { HttpError, MAX_BODY, clientAddress, durationParam, escapeHtml, page, refuseDeclaredBody, sendAuditCsv, sendHtml, sendJson } from './http-io.js';

export * from './http-io.js';
export { DEFAULT_PRIVACY_TEXT, DEFAULT_TERMS_TEXT, legalPages } from './legal.js';

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
  /** Body caps of paths that take more than MAX_BODY (the chat platforms' webhooks), by path. */
  bodyLimits?: ReadonlyMap<string, number>;
}

/** Extra routes mounted by adapters: return true when the request was handled. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;


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
    refuseDeclaredBody(req, deps.bodyLimits?.get(path) ?? MAX_BODY);

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
      const as = parsePrincipal(url.searchParams.get('as') ?? '');
      if (!as) throw new HttpError(400, '"as" must be the principal to act as (alice@contoso.com)');
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
