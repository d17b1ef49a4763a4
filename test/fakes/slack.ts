// A local stand-in for Slack's Web API (https://api.slack.com/methods) and for response_url
// hooks, on 127.0.0.1. It answers as Slack documents (ok/error envelopes, channel + ts on posts,
// DMs to a user id answered with a D… channel) and records every call for assertions. Also
// signs requests the way Slack signs them (v0 HMAC-SHA256 of `v0:timestamp:body`). Blocks that
// break Block Kit's documented limits are refused as Slack refuses them (see ./block-kit.ts):
// chat.postMessage / chat.update answer `invalid_blocks`, views.open `invalid_arguments`, a
// response_url post HTTP 400 `invalid_blocks`.
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { blockKitProblems, viewProblems } from './block-kit.js';

export interface SlackCall {
  method: string;
  /** Form fields or JSON body; JSON-looking form fields (blocks, view) parsed. */
  body: Record<string, unknown>;
  token: string | undefined;
  at: number;
  /** What the fake answered. */
  response?: Record<string, unknown>;
}

export interface ResponseUrlCall {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

export interface FakeUser {
  email?: string;
  tz?: string;
  deleted?: boolean;
  is_bot?: boolean;
}

export class FakeSlack {
  readonly calls: SlackCall[] = [];
  readonly responses: ResponseUrlCall[] = [];
  /** Every refusal of blocks (method, problems), for assertions. */
  readonly refused: Array<{ method: string; problems: string[] }> = [];
  private server: Server;
  private ts = 1_767_000_000_000;
  private failures: Array<{ method: string; status: number; headers: Record<string, string>; body: unknown; match?: (body: Record<string, unknown>) => boolean }> = [];
  url = '';
  /** User groups (S… id → member user ids) for `usergroups.users.list`; tests change them. */
  readonly usergroups: Record<string, string[]> = {};

  constructor(readonly users: Record<string, FakeUser> = {}) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const type = req.headers['content-type'] ?? '';
        let body: Record<string, unknown> = {};
        if (type.includes('application/json')) body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        else
          for (const [k, v] of new URLSearchParams(raw)) {
            body[k] = /^[[{]/.test(v) ? JSON.parse(v) : v;
          }
        const path = (req.url ?? '/').split('?')[0]!;
        const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
          res.end(JSON.stringify(payload));
        };
        if (path === '/stats' && req.method === 'GET') {
          // For benchmarks that run this fake in a process of its own.
          return send(200, { responses: this.responses.map((r) => ({ path: r.path, at: r.at })), cards: this.of('chat.postMessage').filter((c) => c.body.channel === 'C0APPROVALS').length });
        }
        if (path.startsWith('/respond/')) {
          const problems = body.blocks === undefined ? [] : blockKitProblems(body.blocks);
          if (problems.length) {
            this.refused.push({ method: 'response_url', problems });
            res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid_blocks');
            return;
          }
          this.responses.push({ path, body, at: Date.now() });
          return send(200, { ok: true });
        }
        const m = /^\/api\/([\w.]+)$/.exec(path);
        if (!m) return send(404, { ok: false, error: 'unknown_method' });
        const method = m[1]!;
        const auth = req.headers.authorization;
        const token = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof body.token === 'string' ? body.token : undefined;
        const fi = this.failures.findIndex((f) => f.method === method && (!f.match || f.match(body)));
        if (fi >= 0) {
          const f = this.failures.splice(fi, 1)[0]!;
          this.calls.push({ method: `${method}!${f.status}`, body, token, at: Date.now() });
          return send(f.status, f.body, f.headers);
        }
        const response = this.answer(method, body) as Record<string, unknown>;
        this.calls.push({ method, body, token, at: Date.now(), response });
        send(200, response);
      });
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  responseUrl(id: string): string {
    return `${this.url}/respond/${id}`;
  }

  /** The next call of `method` (whose body `match`es, if given) fails as given (e.g. 429 with Retry-After). */
  failNext(method: string, status: number, headers: Record<string, string> = {}, body: unknown = { ok: false, error: 'ratelimited' }, match?: (body: Record<string, unknown>) => boolean): void {
    this.failures.push({ method, status, headers, body, ...(match ? { match } : {}) });
  }

  of(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private answer(method: string, body: Record<string, unknown>): unknown {
    if ((method === 'chat.postMessage' || method === 'chat.update') && body.blocks !== undefined) {
      const problems = blockKitProblems(body.blocks);
      if (problems.length) {
        this.refused.push({ method, problems });
        return { ok: false, error: 'invalid_blocks', errors: problems, response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } };
      }
    }
    if (method === 'views.open') {
      const problems = viewProblems(body.view);
      if (problems.length) {
        this.refused.push({ method, problems });
        return { ok: false, error: 'invalid_arguments', response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } };
      }
    }
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://contoso.slack.com/', team: 'Contoso', user: 'jitbot', team_id: 'T0CONTOSO', user_id: 'U0JITBOT', bot_id: 'B0JITBOT' };
      case 'chat.postMessage': {
        const ch = String(body.channel);
        const channel = /^[UW]/.test(ch) ? `D${ch.slice(1)}` : ch;
        const ts = `${Math.floor(++this.ts / 1000)}.${String(this.ts % 1000).padStart(3, '0')}100`;
        return { ok: true, channel, ts, message: { type: 'message', text: body.text, blocks: body.blocks, bot_id: 'B0JITBOT', ts } };
      }
      case 'chat.update':
        return { ok: true, channel: body.channel, ts: body.ts, text: body.text };
      case 'views.open':
        return { ok: true, view: { id: 'V0DENY', ...(body.view as object) } };
      case 'users.info': {
        const id = String(body.user);
        const u = this.users[id];
        if (!u) return { ok: false, error: 'user_not_found' };
        return {
          ok: true,
          user: {
            id, team_id: 'T0CONTOSO', name: id.toLowerCase(), deleted: u.deleted ?? false, is_bot: u.is_bot ?? false, tz: u.tz ?? 'Europe/Amsterdam',
            profile: { ...(u.email ? { email: u.email } : {}), real_name: id },
          },
        };
      }
      case 'users.lookupByEmail': {
        const hit = Object.entries(this.users).find(([, u]) => u.email === body.email);
        return hit ? { ok: true, user: { id: hit[0], profile: { email: body.email } } } : { ok: false, error: 'users_not_found' };
      }
      case 'usergroups.users.list': {
        // https://api.slack.com/methods/usergroups.users.list: `{ ok, users: [ids] }`, or `no_such_subteam`.
        const members = Object.hasOwn(this.usergroups, String(body.usergroup)) ? this.usergroups[String(body.usergroup)] : undefined;
        return members ? { ok: true, users: members } : { ok: false, error: 'no_such_subteam' };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SendOptions {
  secret: string;
  /** Seconds since the epoch; default now. */
  timestamp?: number;
  signature?: string | null;
  retryNum?: number;
}

/** POSTs a body to /slack/events signed as Slack signs it. */
export async function sendSigned(baseUrl: string, body: string, opts: SendOptions): Promise<{ status: number; text: string; ms: number }> {
  const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (opts.signature !== null) {
    headers['x-slack-request-timestamp'] = String(ts);
    headers['x-slack-signature'] = opts.signature ?? slackSignature(opts.secret, ts, body);
  }
  if (opts.retryNum) {
    headers['x-slack-retry-num'] = String(opts.retryNum);
    headers['x-slack-retry-reason'] = 'http_timeout';
  }
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}/slack/events`, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

let triggers = 0;
const trigger = () => `${Date.now()}.${++triggers}.a1b2c3d4e5f6`;

/** A slash command body as Slack sends it (application/x-www-form-urlencoded). */
export function slashBody(user: string, text: string, responseUrl: string, extra: Record<string, string> = {}): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0CONTOSO',
    team_domain: 'contoso',
    channel_id: 'C0GENERAL',
    channel_name: 'general',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/jit',
    text,
    api_app_id: 'A0JITBOT',
    is_enterprise_install: 'false',
    response_url: responseUrl,
    trigger_id: trigger(),
    ...extra,
  }).toString();
}

/** A block_actions payload as Slack sends it for a button click (one form field `payload`). */
export function buttonBody(
  user: string,
  action: { action_id: string; value: string; block_id?: string },
  message: { channel: string; ts: string },
  responseUrl: string,
  triggerId: string = trigger(),
): string {
  const payload = {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0CONTOSO' },
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
    trigger_id: triggerId,
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: message.channel, name: 'approvals' },
    message: { type: 'message', ts: message.ts, bot_id: 'B0JITBOT', text: '' },
    response_url: responseUrl,
    actions: [
      {
        type: 'button',
        action_id: action.action_id,
        block_id: action.block_id ?? 'jit_decide',
        value: action.value,
        text: { type: 'plain_text', text: 'Approve', emoji: true },
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A view_submission payload for the Deny modal. */
export function denySubmissionBody(user: string, view: { callback_id: string; private_metadata: string }, reason: string | null): string {
  const payload = {
    type: 'view_submission',
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0CONTOSO' },
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    trigger_id: trigger(),
    view: {
      id: 'V0DENY',
      team_id: 'T0CONTOSO',
      type: 'modal',
      callback_id: view.callback_id,
      private_metadata: view.private_metadata,
      state: { values: { reason: { reason: { type: 'plain_text_input', value: reason } } } },
      hash: '1700000000.abc',
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
