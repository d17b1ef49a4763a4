// The REST API under /api/v1: the same service and RBAC as chat, for scripts, pipelines and
// dashboards. Callers authenticate with `Authorization: Bearer <token>`; the server keeps only
// each token's SHA-256 (JIT_API_TOKENS), bound to one principal, so a token can do exactly what
// that principal can do in chat. The OpenAPI document is served at /api/v1/openapi.json.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JitService } from '../../app/service.js';
import type { AccessCommand } from '../../core/command.js';
import { isJitError } from '../../core/errors.js';
import { parsePrincipal, parseTargetName, REQUEST_ID_RE } from '../../core/ids.js';
import { parsePorts, VERB_PORTS } from '../../core/parse.js';
import { rejectedReply, renderText, type Reply } from '../../core/reply.js';
import type { PrincipalId, RequestStatus } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { durationParam, HttpError, readBody, sendAuditCsv, sendJson as sendRaw, type Route } from '../../server.js';
import type { LocalAuth } from '../local/auth.js';
import type { z } from 'zod';
import { openApiDocument } from './openapi.js';
import { CardActionBody, CommandBody, DenyBody, ExtendBody, NewRequestBody, parseBody, STATUSES } from './schemas.js';
import { approvalCardView, runCardAction } from '../chat/card-actions.js';

export interface ApiToken {
  principal: PrincipalId;
  /** Hex SHA-256 of the token. */
  sha256: string;
}

const STATUS_OF: Record<string, number> = {
  parse: 400, unknown_command: 400, bad_duration: 400, bad_port: 400, bad_source: 400, bad_start: 400, bad_justification: 400, justification_required: 400,
  forbidden: 403, not_approver: 403, self_approval: 403,
  not_found: 404, unknown_target: 404,
  already_decided: 409, invalid_transition: 409, conflict: 409,
  link_expired: 410,
  limit_reached: 429, rate_limited: 429,
};

/** Accept this media type on POST /commands to get the reply's Adaptive Card as `card`. */
const CARD_TYPE = 'application/vnd.microsoft.card.adaptive+json';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Answers a service reply: a rejection becomes its HTTP status with `{error, code, example}`. */
function sendReply(res: ServerResponse, reply: Reply, okStatus = 200): void {
  if (reply.kind === 'rejected') {
    sendJson(res, STATUS_OF[reply.code] ?? 400, { error: reply.message, code: reply.code, ...(reply.example ? { example: reply.example } : {}) });
    return;
  }
  sendJson(res, okStatus, reply);
}

/**
 * A request's `origin.via` was called `origin.channel` until 2026-12-03: answers carry both, the
 * old name deprecated (the OpenAPI schema says so), so a client that reads it keeps working.
 */
const legacyOrigin = (key: string, value: unknown): unknown =>
  key === 'origin' && value !== null && typeof value === 'object' && 'via' in value ? { ...value, channel: value.via } : value;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendRaw(res, status, body, legacyOrigin);
}

/** POST /requests body (validated) → the chat grammar's access command (checked the same way afterwards). */
function accessCommand(body: z.output<typeof NewRequestBody>): AccessCommand {
  const verb = body.kind;
  let ports;
  if (verb === 'port') {
    if (!body.ports) throw new HttpError(400, '"ports" must be a list such as [3389] or ["8443/tcp"] (or give "kind": "rdp" | "ssh" | "winrm")');
    try {
      ports = body.ports.flatMap((p) => parsePorts(String(p)));
    } catch (e) {
      throw new HttpError(400, isJitError(e) ? e.message : 'bad ports');
    }
  } else ports = VERB_PORTS[verb];
  const durationMs = durationParam(body.duration, 'duration');
  const { source, justification, startAt } = body;
  return { kind: 'access', verb, ports, target: parseTargetName(body.target) ?? body.target, durationMs, ...(source !== undefined ? { source } : {}), ...(justification !== undefined ? { justification } : {}), ...(startAt !== undefined ? { startAt } : {}) };
}

export function createApi(deps: { service: JitService; tokens: ApiToken[]; log: Logger; /** The local channel: with its secret, `X-Jit-Act-As` may name the principal. */ local?: LocalAuth }): Route {
  const { service, log } = deps;
  const hashes = deps.tokens.map((t) => ({ principal: t.principal, digest: Buffer.from(t.sha256, 'hex') }));

  /** The principal a bearer token belongs to (compared in constant time), or 401. */
  const authenticate = (req: IncomingMessage): PrincipalId => {
    // The local channel (CLI, console) acts as any principal, as /api/local does: only when it is
    // enabled, with its secret (token header or console cookie), straight from this machine.
    const actAs = req.headers['x-jit-act-as'];
    if (typeof actAs === 'string' && !req.headers.authorization) {
      if (!deps.local) throw Object.assign(new HttpError(401, 'X-Jit-Act-As is only accepted on the local channel (JIT_LOCAL_CHANNEL); use a bearer token'), { bearer: true });
      deps.local.check(req);
      const who = parsePrincipal(actAs);
      if (!who) throw Object.assign(new HttpError(401, 'X-Jit-Act-As must name a principal (alice@contoso.com)'), { bearer: true });
      return who;
    }
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S{16,512})$/i.exec(header);
    if (!m) throw Object.assign(new HttpError(401, 'missing bearer token (Authorization: Bearer <token>)'), { bearer: true });
    const digest = sha256(m[1]!);
    let who: PrincipalId | undefined;
    for (const h of hashes) if (timingSafeEqual(h.digest, digest)) who = h.principal;
    if (!who) throw Object.assign(new HttpError(401, 'invalid token'), { bearer: true });
    return who;
  };

  /** The body, parsed and checked against its schema (the same one the OpenAPI document shows); else 400 (413 when too large). */
  const body = async <S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> => {
    const text = await readBody(req);
    let v: unknown = {};
    if (text.trim() !== '') {
      try {
        v = JSON.parse(text) as unknown;
      } catch {
        throw new HttpError(400, 'body must be a JSON object');
      }
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'body must be a JSON object');
    const parsed = parseBody(schema, v);
    if (!parsed.ok) throw new HttpError(400, parsed.error);
    return parsed.value;
  };

  const origin = { via: 'api' };
  const cardView = approvalCardView(service);

  return async (req, res, url) => {
    const path = url.pathname;
    if (!path.startsWith('/api/v1/') && path !== '/api/v1') return false;
    try {
      if (req.method === 'GET' && path === '/api/v1/openapi.json') return sendJson(res, 200, openApiDocument()), true;
      const actor = authenticate(req);
      const id = /^\/api\/v1\/requests\/([^/]+)(?:\/(approve|deny|revoke|extend))?$/.exec(path);
      if (id && !REQUEST_ID_RE.test(id[1]!)) throw new HttpError(404, `there is no request ${id[1]!.slice(0, 20)}`);

      if (path === '/api/v1/commands' && req.method === 'POST') {
        // The chat grammar as is (`rdp vm1 2h from 203.0.113.7`): what the CLI and scripts use.
        const { text, prefix = 'jit' } = await body(req, CommandBody);
        const reply = await service.execute(actor, text, origin);
        const rendered = renderText(reply, prefix);
        // Asked for the Adaptive Card too (the web console renders it, as Teams would).
        const card = String(req.headers.accept ?? '').includes(CARD_TYPE) ? { card: (await import('../teams/cards.js')).replyCard(reply) } : {};
        if (reply.kind === 'rejected') sendJson(res, STATUS_OF[reply.code] ?? 400, { error: reply.message, code: reply.code, ...(reply.example ? { example: reply.example } : {}), reply, text: rendered, ...card });
        else sendJson(res, 200, { reply, text: rendered, ...card });
        return true;
      }
      if (path === '/api/v1/card-actions' && req.method === 'POST') {
        // Adaptive Card Universal Actions (Action.Execute) from a card host: the same code as a
        // Teams invoke; answers the refreshed card, or a message when refused (card unchanged).
        const action = await body(req, CardActionBody);
        const result = await runCardAction(service, actor, action.verb, action.data, cardView, (msg, fields) => log.warn(`api: ${msg}`, fields));
        // A request the caller may not see (or that does not exist) is 404, as GET /requests/{id};
        // a rate limit is 429; other refusals are answered as a message (card unchanged).
        if (result.kind === 'message' && (result.code === 'not_found' || result.code === 'rate_limited')) {
          return sendJson(res, STATUS_OF[result.code]!, { ...result, error: result.text.replace(/^✗ /, '') }), true;
        }
        return sendJson(res, 200, result), true;
      }
      if (path === '/api/v1/requests' && req.method === 'POST') {
        const reply = await service.run(actor, accessCommand(await body(req, NewRequestBody)), origin);
        return sendReply(res, reply, 201), true;
      }
      if (path === '/api/v1/requests' && req.method === 'GET') {
        const status = url.searchParams.get('status') ?? undefined;
        if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw new HttpError(400, `status must be one of ${STATUSES.join(', ')}`);
        const limit = Number(url.searchParams.get('limit') ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new HttpError(400, 'limit must be 1–200');
        const targetParam = url.searchParams.get('target') ?? undefined;
        const target = targetParam === undefined ? undefined : parseTargetName(targetParam);
        const requesterParam = url.searchParams.get('requester') ?? undefined;
        const requester = requesterParam === undefined ? undefined : parsePrincipal(requesterParam);
        // A filter that is no VM name or no principal matches no request (as it always answered: an empty list).
        if ((targetParam !== undefined && !target) || (requesterParam !== undefined && !requester)) return sendJson(res, 200, { requests: [] }), true;
        const requests = await service.listVisible(actor, { ...(status ? { status: status as RequestStatus } : {}), ...(target ? { target } : {}), ...(requester ? { requester } : {}), limit });
        return sendJson(res, 200, { requests }), true;
      }
      if (id && !id[2] && req.method === 'GET') return sendReply(res, await service.status(actor, id[1]!)), true;
      if (id && id[2] && req.method === 'POST') {
        const rid = id[1]!;
        let cmd;
        if (id[2] === 'deny') {
          const { reason } = await body(req, DenyBody);
          cmd = { kind: 'deny', requestId: rid, ...(reason?.trim() ? { reason: reason.trim() } : {}) } as const;
        } else if (id[2] === 'extend') {
          cmd = { kind: 'extend', requestId: rid, durationMs: durationParam((await body(req, ExtendBody)).duration, 'duration') } as const;
        } else {
          // approve / revoke take no body; anything sent is read (size-limited) and ignored.
          await readBody(req);
          cmd = { kind: id[2] === 'approve' ? 'approve' : 'revoke', requestId: rid } as const;
        }
        return sendReply(res, await service.run(actor, cmd, origin)), true;
      }
      if (path === '/api/v1/targets' && req.method === 'GET') return sendReply(res, await service.vms(actor)), true;
      if ((path === '/api/v1/audit' || path === '/api/v1/audit.csv') && req.method === 'GET') {
        const target = url.searchParams.get('target') ?? undefined;
        const sinceMs = durationParam(url.searchParams.get('since') ?? '7d', 'since');
        // A JitError (unknown VM) is answered by the catch below with its status.
        const { rows, truncated } = await service.auditRows(actor, { ...(target ? { target } : {}), since: Date.now() - sinceMs });
        if (path.endsWith('.csv')) return sendAuditCsv(res, rows, target), true;
        return sendJson(res, 200, { rows, truncated }), true;
      }
      throw new HttpError(404, `no route for ${req.method} ${path}`);
    } catch (e) {
      if (e instanceof HttpError) {
        if ((e as { bearer?: boolean }).bearer) res.setHeader('www-authenticate', 'Bearer realm="jit-bot"');
        sendJson(res, e.status, { error: e.message });
        return true;
      }
      // Service refusals thrown rather than returned (status, decide, audit of an unknown VM).
      if (isJitError(e)) return sendReply(res, rejectedReply(e)), true;
      log.error('api: request failed', { path, err: e });
      sendJson(res, 500, { error: 'internal error' });
      return true;
    }
  };
}
