// The one HTTP server. Routes: GET /healthz and /readyz, the "my IP" link (/myip/<token>), and the
// local channel's views under /api/local/ (loopback only: the simulated rules, the raw audit log,
// the audit CSV). Adapters mount their routes here: the REST API (/api/v1), /metrics, Slack
// (/slack/events), Teams (/api/messages) and the web console.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { JitService } from './app/service.js';
import type { AuditLog, NetworkGate } from './app/ports.js';
import { toCsv, type AuditRow } from './core/audit-export.js';
import { parseDuration } from './core/duration.js';
import { isJitError } from './core/errors.js';
import { renderText } from './core/reply.js';
import { parseSource, sourceAllowed } from './core/source.js';
import type { Logger } from './log.js';

export interface Health {
  redis(): Promise<boolean>;
  worker(): 'running' | 'stopped' | 'disabled';
  /** True once SIGTERM started the drain. */
  draining?(): boolean;
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
  localChannel: boolean;
  trustedProxies: string[];
  /** Told about every request being handled (the drain waits for them). */
  track?: (handling: Promise<void>) => void;
}

/** Extra routes mounted by adapters: return true when the request was handled. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

const MAX_BODY = 64 * 1024;

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
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
 * The address a request came from. `X-Forwarded-For` is honoured only when the peer is a
 * trusted proxy; then the right-most address that is not itself a trusted proxy is the client.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: string[]): string {
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
    const hop = chain[i]!;
    if (!trusted(hop)) return hop;
  }
  return peer;
}

export function createHttpServer(deps: ServerDeps, extraRoutes: Route[] = []): Server {
  const { service, log } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;

    // Liveness: the process answers. Redis or a chat platform being down is not a reason to restart it.
    if (req.method === 'GET' && path === '/healthz') {
      sendJson(res, 200, { status: 'ok', worker: deps.health.worker(), network: deps.network });
      return;
    }
    // Readiness: Redis answers, the worker runs (where enabled), every adapter is usable, not draining.
    if (req.method === 'GET' && path === '/readyz') {
      const redis = await deps.health.redis().catch(() => false);
      const worker = deps.health.worker();
      const draining = deps.health.draining?.() ?? false;
      const adapters = deps.health.adapters?.() ?? {};
      const ok = redis && worker !== 'stopped' && !draining && Object.values(adapters).every((v) => v === 'ok');
      sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : draining ? 'draining' : 'not ready', redis: redis ? 'up' : 'down', worker, ...adapters });
      return;
    }

    const myip = /^\/myip\/([A-Za-z0-9_-]{16,64})$/.exec(path);
    if (myip) {
      const token = myip[1]!;
      if (req.method === 'GET') {
        // A GET never consumes the link: chat apps fetch links to preview them.
        const request = await service.describeSourceToken(token);
        if (!request) return sendHtml(res, 410, page('Link expired', '<p>This link has expired or was already used. Make the request again in chat.</p>'));
        const addr = clientAddress(req, deps.trustedProxies);
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
      if (req.method === 'POST') {
        const addr = clientAddress(req, deps.trustedProxies);
        const reply = await service.recordSource(token, addr);
        const ok = reply.kind !== 'rejected';
        return sendHtml(res, ok ? 200 : 400, page(ok ? 'Address recorded' : 'Not accepted', `<p>${escapeHtml(renderText(reply, 'jit'))}</p><p>You can close this page.</p>`));
      }
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }

    if (path.startsWith('/api/local/')) {
      if (!deps.localChannel) throw new HttpError(404, 'the local channel is disabled (JIT_LOCAL_CHANNEL, loopback only)');
      return localApi(req, res, url);
    }

    for (const route of extraRoutes) if (await route(req, res, url)) return;
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  }

  async function localApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
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
        if (isJitError(e)) throw new HttpError(400, e.message);
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

  return createServer((req, res) => {
    const handling = handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      log.error('request failed', { path: req.url?.replace(/\/myip\/[^/?]+/, '/myip/…'), err });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    });
    deps.track?.(handling);
  });
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
