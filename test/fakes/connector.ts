// A local stand-in for the Bot Framework Connector service that Teams exposes at `serviceUrl`
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference):
// send / reply / update activities and member lookups, answered as documented, every call recorded.
// Plus builders for the activities Teams POSTs to a bot's /api/messages. An Adaptive Card that
// breaks the official 1.5 schema is refused (400 BadArgument), and a message over Teams' ~28 KB
// limit too (413 MessageSizeTooBig); both are recorded in `refused`.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cardBytes, cardProblems, TEAMS_CARD_BUDGET_BYTES } from '../fixtures/adaptive-card-schema.js';

export interface ConnectorCall {
  method: string;
  /** `send`, `reply`, `update`, `member`. */
  op: string;
  conversationId: string;
  activityId?: string;
  body: Record<string, unknown>;
  at: number;
  /** The id the connector answered with (send / reply / update). */
  resourceId?: string;
}

export interface TeamsUser {
  /** Teams user id, `29:…`. */
  id: string;
  name: string;
  aadObjectId: string;
  userPrincipalName?: string;
  email?: string;
}

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const BOT = { id: '28:00000000-0000-4000-8000-00000000b07b', name: 'jit-bot' };

export class FakeConnector {
  readonly calls: ConnectorCall[] = [];
  /** Activities refused for their cards: why. */
  readonly refused: Array<{ op: string; problems: string[] }> = [];
  private server: Server;
  private seq = 0;
  private failures: Array<{ conversationId: string; status: number; code: string }> = [];
  url = '';

  constructor(readonly users: TeamsUser[]) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        const path = (req.url ?? '/').split('?')[0]!;
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify(payload));
        };
        const m = /^\/v3\/conversations\/([^/]+)\/(activities|members)(?:\/([^/]+))?$/.exec(path);
        if (!m) return send(404, { error: { code: 'NotFound', message: path } });
        const conversationId = decodeURIComponent(m[1]!);
        const sub = m[2]!;
        const item = m[3] ? decodeURIComponent(m[3]) : undefined;
        if (sub === 'members' && req.method === 'GET' && item) {
          this.calls.push({ method: 'GET', op: 'member', conversationId, activityId: item, body, at: Date.now() });
          const u = this.users.find((x) => x.id === item);
          if (!u) return send(404, { error: { code: 'MemberNotFoundInConversation', message: 'Member not found' } });
          return send(200, { id: u.id, name: u.name, aadObjectId: u.aadObjectId, userPrincipalName: u.userPrincipalName, email: u.email, tenantId: TENANT, userRole: 'user' });
        }
        if (sub === 'activities') {
          const op = req.method === 'PUT' ? 'update' : item ? 'reply' : 'send';
          const fail = this.failures.findIndex((f) => f.conversationId === conversationId);
          if (op !== 'update' && fail >= 0) {
            const [f] = this.failures.splice(fail, 1);
            this.calls.push({ method: req.method ?? '', op: `${op}!${f!.status}`, conversationId, body, at: Date.now() });
            return send(f!.status, { error: { code: f!.code, message: 'refused by the test' } });
          }
          const cards = ((body.attachments as Array<{ contentType?: string; content?: unknown }> | undefined) ?? []).filter((a) => a.contentType === 'application/vnd.microsoft.card.adaptive');
          const problems = cards.flatMap((a) => cardProblems(a.content));
          if (problems.length) {
            this.refused.push({ op, problems });
            return send(400, { error: { code: 'BadArgument', message: problems.join('; ') } });
          }
          if (Buffer.byteLength(raw, 'utf8') > TEAMS_CARD_BUDGET_BYTES && cards.some((a) => cardBytes(a.content) > 0)) {
            this.refused.push({ op, problems: [`${Buffer.byteLength(raw, 'utf8')} bytes`] });
            return send(413, { error: { code: 'MessageSizeTooBig', message: 'Message size too big' } });
          }
          const resourceId = op === 'update' ? item! : `act-${++this.seq}`;
          this.calls.push({ method: req.method ?? '', op, conversationId, ...(item ? { activityId: item } : {}), body, at: Date.now(), resourceId });
          return send(200, { id: resourceId });
        }
        send(405, { error: { code: 'BadArgument' } });
      });
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** The next message sent to this conversation is refused with this status and error code. */
  failNext(conversationId: string, status: number, code: string): void {
    this.failures.push({ conversationId, status, code });
  }

  /** Messages (send / reply) delivered to a conversation. */
  to(conversationId: string): ConnectorCall[] {
    return this.calls.filter((c) => c.conversationId === conversationId && (c.op === 'send' || c.op === 'reply'));
  }

  updates(): ConnectorCall[] {
    return this.calls.filter((c) => c.op === 'update');
  }
}

/** The Adaptive Card in a connector call's activity, if any. */
export function cardOf(call: { body: Record<string, unknown> }): Record<string, unknown> | undefined {
  const atts = call.body.attachments as Array<{ contentType: string; content: Record<string, unknown> }> | undefined;
  return atts?.find((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')?.content;
}

export const personalConversation = (u: TeamsUser) => ({ conversationType: 'personal', tenantId: TENANT, id: `a:personal-${u.id.slice(3)}` });
export const channelConversation = (channel: string) => ({ conversationType: 'channel', tenantId: TENANT, isGroup: true, id: `${channel};messageid=1767000000000` });

let n = 0;
function base(serviceUrl: string, from: TeamsUser, conversation: Record<string, unknown>) {
  return {
    id: `f:${Date.now()}${++n}`,
    timestamp: new Date().toISOString(),
    serviceUrl,
    channelId: 'msteams',
    from: { id: from.id, name: from.name, aadObjectId: from.aadObjectId },
    conversation,
    recipient: BOT,
    channelData: { tenant: { id: TENANT } },
    locale: 'en-US',
  };
}

export function messageActivity(serviceUrl: string, from: TeamsUser, text: string, conversation: Record<string, unknown> = personalConversation(from), extra: Record<string, unknown> = {}) {
  const mention = String(conversation.conversationType) !== 'personal';
  return {
    ...base(serviceUrl, from, conversation),
    type: 'message',
    localTimezone: 'Europe/Berlin',
    textFormat: 'plain',
    text: mention ? `<at>${BOT.name}</at> ${text}` : text,
    entities: [
      { type: 'clientInfo', locale: 'en-US', country: 'US', platform: 'Web', timezone: 'Europe/Berlin' },
      ...(mention ? [{ type: 'mention', text: `<at>${BOT.name}</at>`, mentioned: BOT }] : []),
    ],
    ...extra,
  };
}

export function installActivity(serviceUrl: string, user: TeamsUser) {
  return { ...base(serviceUrl, user, personalConversation(user)), type: 'conversationUpdate', membersAdded: [{ id: BOT.id }] };
}

export function actionActivity(serviceUrl: string, from: TeamsUser, verb: string, data: Record<string, unknown>, conversation: Record<string, unknown>, replyToId?: string) {
  return {
    ...base(serviceUrl, from, conversation),
    type: 'invoke',
    name: 'adaptiveCard/action',
    ...(replyToId ? { replyToId } : {}),
    value: { action: { type: 'Action.Execute', id: `a${++n}`, verb, data }, trigger: verb === 'refresh' ? 'automatic' : 'manual' },
  };
}

export async function postActivity(baseUrl: string, activity: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${baseUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(activity) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* plain text */
  }
  return { status: res.status, body };
}
