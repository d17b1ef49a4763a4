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
  /** Modals opened (views.open) by view id, as last drawn, with their hash (views.update checks it). */
  readonly views = new Map<string, { hash: string; view: Record<string, unknown> }>();
  /** Each user's App Home as last published (views.publish). */
  readonly homes = new Map<string, Record<string, unknown>>();
  private viewIds = 0;
  private readonly triggers = new Set<string>();
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
    if (method === 'views.open' || method === 'views.update' || method === 'views.publish') {
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
      case 'views.open': {
        // trigger_id: required, and good for one view only (Slack: expired_trigger_id / trigger_exchanged).
        const trigger = String(body.trigger_id ?? '');
        if (!trigger) return { ok: false, error: 'invalid_trigger_id' };
        if (this.triggers.has(trigger)) return { ok: false, error: 'trigger_exchanged' };
        this.triggers.add(trigger);
        const id = `V0VIEW${++this.viewIds}`;
        this.views.set(id, { hash: `h${this.viewIds}.0`, view: body.view as Record<string, unknown> });
        return { ok: true, view: { id, hash: this.views.get(id)!.hash, ...(body.view as object) } };
      }
      case 'views.update': {
        const id = String(body.view_id ?? '');
        const cur = this.views.get(id);
        if (!cur) return { ok: false, error: 'not_found' };
        if (body.hash !== undefined && body.hash !== cur.hash) return { ok: false, error: 'hash_conflict' };
        const hash = `${cur.hash.split('.')[0]}.${Number(cur.hash.split('.')[1]) + 1}`;
        this.views.set(id, { hash, view: body.view as Record<string, unknown> });
        return { ok: true, view: { id, hash, ...(body.view as object) } };
      }
      case 'views.publish': {
        const user = String(body.user_id ?? '');
        if (!this.users[user]) return { ok: false, error: 'user_not_found' };
        this.homes.set(user, body.view as Record<string, unknown>);
        return { ok: true, view: { id: `V0HOME${user}`, ...(body.view as object) } };
      }
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
  /** The body's media type: Slack posts commands and interactivity as forms, events as JSON. */
  contentType?: string;
}

/** POSTs a body to /slack/events signed as Slack signs it. */
export async function sendSigned(baseUrl: string, body: string, opts: SendOptions): Promise<{ status: number; text: string; ms: number }> {
  const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/x-www-form-urlencoded' };
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

/** The input state of a modal as Slack sends it (view.state.values: block id → action id → value). */
export type ViewState = Record<string, Record<string, Record<string, unknown>>>;

const user = (id: string) => ({ id, username: id.toLowerCase(), name: id.toLowerCase(), team_id: 'T0CONTOSO' });

/** A view as the payloads of a modal carry it. */
function viewPayload(view: { id: string; hash?: string; callback_id?: string; private_metadata?: string; blocks?: unknown; type?: string }, state: ViewState) {
  return {
    id: view.id,
    team_id: 'T0CONTOSO',
    type: view.type ?? 'modal',
    callback_id: view.callback_id ?? '',
    private_metadata: view.private_metadata ?? '',
    blocks: view.blocks ?? [],
    state: { values: state },
    hash: view.hash ?? '1700000000.abc',
  };
}

/** A block_actions payload from an input with dispatch_action in an open modal (a select changed). */
export function viewActionBody(userId: string, view: { id: string; hash?: string; callback_id?: string; private_metadata?: string; blocks?: unknown }, state: ViewState, action: { action_id: string; block_id: string; selected: string }): string {
  const payload = {
    type: 'block_actions',
    user: user(userId),
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    container: { type: 'view', view_id: view.id },
    trigger_id: trigger(),
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    enterprise: null,
    is_enterprise_install: false,
    view: viewPayload(view, state),
    actions: [{ type: 'static_select', action_id: action.action_id, block_id: action.block_id, selected_option: { text: { type: 'plain_text', text: action.selected }, value: action.selected }, action_ts: `${Date.now() / 1000}` }],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A view_submission payload for any modal. */
export function viewSubmissionBody(userId: string, view: { id: string; callback_id?: string; private_metadata?: string; blocks?: unknown }, state: ViewState): string {
  const payload = {
    type: 'view_submission',
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    user: user(userId),
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    trigger_id: trigger(),
    view: viewPayload(view, state),
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A global shortcut's payload (type `shortcut`). */
export function shortcutBody(userId: string, callbackId: string): { body: string; triggerId: string } {
  const triggerId = trigger();
  const payload = { type: 'shortcut', token: 'deprecated-verification-token', action_ts: `${Date.now() / 1000}`, team: { id: 'T0CONTOSO', domain: 'contoso' }, user: user(userId), is_enterprise_install: false, enterprise: null, callback_id: callbackId, trigger_id: triggerId };
  return { body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), triggerId };
}

/** An options load request (block_suggestion) from an external_select, with what the user typed. */
export function blockSuggestionBody(userId: string, action: { action_id: string; block_id: string }, value: string, view: { id: string }): string {
  const payload = {
    type: 'block_suggestion',
    user: user(userId),
    container: { type: 'view', view_id: view.id },
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    action_id: action.action_id,
    block_id: action.block_id,
    value,
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    enterprise: null,
    is_enterprise_install: false,
    view: viewPayload(view, {}),
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A button click on a user's App Home (no response_url: Slack sends none for views). */
export function homeButtonBody(userId: string, action: { action_id: string; value: string; block_id?: string }): string {
  const payload = {
    type: 'block_actions',
    user: user(userId),
    api_app_id: 'A0JITBOT',
    token: 'deprecated-verification-token',
    container: { type: 'view', view_id: `V0HOME${userId}` },
    trigger_id: trigger(),
    team: { id: 'T0CONTOSO', domain: 'contoso' },
    enterprise: null,
    is_enterprise_install: false,
    view: viewPayload({ id: `V0HOME${userId}`, type: 'home' }, {}),
    actions: [{ type: 'button', action_id: action.action_id, block_id: action.block_id ?? 'home', value: action.value, text: { type: 'plain_text', text: 'x' }, action_ts: `${Date.now() / 1000}` }],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** An Events API callback (JSON) for app_home_opened. */
export function homeOpenedBody(userId: string): string {
  return JSON.stringify({
    token: 'deprecated-verification-token',
    team_id: 'T0CONTOSO',
    api_app_id: 'A0JITBOT',
    event: { type: 'app_home_opened', user: userId, channel: `D${userId.slice(1)}`, tab: 'home', event_ts: `${Date.now() / 1000}` },
    type: 'event_callback',
    event_id: `Ev${Date.now()}${++triggers}`,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: 'T0CONTOSO', user_id: 'U0JITBOT', is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  });
}
