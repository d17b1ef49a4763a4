// HTTP helpers every route shares: body caps and reading a body within its cap (413 beyond,
// before reading when announced), JSON / HTML / CSV answers, HttpError, and the client's address
// behind trusted proxies. server.ts re-exports them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { toCsv, type AuditRow } from './core/audit-export.js';
import { parseDuration } from './core/duration.js';
import { isJitError } from './core/errors.js';
import { parseSource, sourceAllowed } from './core/source.js';

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

export function sendJson(res: ServerResponse, status: number, body: unknown, replacer?: (key: string, value: unknown) => unknown): void {
  const text = JSON.stringify(body, replacer);
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

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  });
  res.end(html);
}

export const escapeHtml = (s: string) =>
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

/** A small page of its own (the "my IP" link, the login help, the legal pages). */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}button{font-size:1rem;padding:.6rem 1.2rem}</style></head>
<body><h1>${title}</h1>${body}</body></html>`;
}
