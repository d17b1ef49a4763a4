// Microsoft Teams, on botbuilder: `jit …` to the bot (1:1 or @mention), replies as Adaptive Cards,
// approvals with Universal Actions (Action.Execute → `adaptiveCard/action` invoke answered with
// the updated card; refresh.userIds gives approvers the buttons), proactive messages through
// stored conversation references, and the audit feed to a channel. Mounted on the project's
// one HTTP server at POST /api/messages; incoming activities are authenticated (JWT) by the
// CloudAdapter whenever an app id is set, and only tokens the Bot Framework channel service issued
// are accepted (not the emulator / skill tokens botbuilder also accepts: the bot's own credentials
// can mint those). Activities from a tenant outside the allow-list are refused before anything
// is read or stored.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ActivityTypes,
  CardFactory,
  CloudAdapter,
  ConfigurationBotFrameworkAuthentication,
  ConfigurationServiceClientCredentialFactory,
  TeamsInfo,
  TurnContext,
  type Activity,
  type ConversationReference,
} from 'botbuilder';
import {
  AuthenticationConstants,
  AuthenticationError,
  type AuthenticationConfiguration,
  type Claim,
  type ServiceClientCredentialsFactory,
} from 'botframework-connector';
import type { Redis } from 'ioredis';
import type { Notification, Notifier, OpsMetrics } from '../../app/ports.js';
import type { DecisionScope, JitService } from '../../app/service.js';
import { isJitError } from '../../core/errors.js';
import { effectivePolicy, type PolicyBook } from '../../core/policy.js';
import { expandRefs } from '../../core/rbac.js';
import { requesterNotice } from '../../core/messages.js';
import { connectionsFor } from '../../core/reply.js';
import type { AccessRequest, AuditEvent, PrincipalId } from '../../core/types.js';
import { routeOn, type PlatformRoute } from '../../core/workflow.js';
import type { Logger } from '../../log.js';
import { CHAT_MAX_BODY, HttpError, readBody, type Route } from '../../server.js';
import { refuseNonLocal } from '../local/auth.js';
import { runCardAction } from '../chat/card-actions.js';
import { ChannelPoster } from '../chat/poster.js';
import { COLORS, activeCard, approvalCard, auditLine, expiringCard, noticeCard, replyCard, type CardJson } from './cards.js';

export const TEAMS_PATH = '/api/messages';

/** Whether two Bot Connector URLs are the same service (scheme, host, port, path; a trailing / aside). */
function sameService(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    return x.origin === y.origin && x.pathname.replace(/\/+$/, '') === y.pathname.replace(/\/+$/, '');
  } catch {
    return false;
  }
}

export interface TeamsSettings {
  /** Empty: unauthenticated local mode (TEAMS_ALLOW_UNAUTHENTICATED, loopback only). */
  appId: string;
  appPassword?: string;
  appType: 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
  tenantId?: string;
  /** Bot Connector base for channels configured by id before anyone talked to the bot there. */
  serviceUrl: string;
  auditChannel?: string;
  auditIntervalMs: number;
  userCacheTtlMs: number;
  /**
   * Tenant ids (lower case) whose activities are answered; any other tenant is refused before
   * anything is read or stored. Empty: no check (only in unauthenticated local mode).
   */
  allowedTenants: string[];
}

/**
 * Bot Framework endpoints and credentials other than the public cloud's: a private cloud, or tests
 * (a local OpenID metadata / JWKS fake). With `endpoints`, botbuilder uses none of its defaults.
 */
export interface TeamsAuthOverrides {
  endpoints?: {
    ToBotFromChannelTokenIssuer: string;
    ToBotFromChannelOpenIdMetadataUrl: string;
    ToBotFromEmulatorOpenIdMetadataUrl: string;
    ToChannelFromBotLoginUrl: string;
    ToChannelFromBotOAuthScope: string;
    OAuthUrl: string;
    CallerId?: string;
    ValidateAuthority?: boolean;
  };
  credentialsFactory?: ServiceClientCredentialsFactory;
}

/**
 * Accepts only claims of a token the Bot Framework channel service issued (`iss` = the channel
 * token issuer). botbuilder also accepts "emulator" tokens (issued by Entra ID to any app, checked
 * only for `azp`/`appid` = our app id and not bound to the activity's serviceUrl) and skill
 * tokens: anyone holding the bot's client secret can mint those, so they are refused.
 */
export function channelTokensOnly(channelIssuer: string): AuthenticationConfiguration {
  return {
    requiredEndorsements: [],
    validateClaims: async (claims: Claim[]) => {
      const iss = claims.find((c) => c.type === AuthenticationConstants.IssuerClaim)?.value;
      if (iss !== channelIssuer) {
        throw new AuthenticationError(`Unauthorized: only tokens issued by the Bot Framework channel service (${channelIssuer}) are accepted, not "${String(iss)}"`, 401);
      }
    },
  };
}

/** The tenant an activity comes from: channelData.tenant.id and conversation.tenantId must agree. */
export function tenantOf(a: Partial<Activity>): { tenant?: string; conflict: boolean } {
  const fromData = (a.channelData as { tenant?: { id?: unknown } } | undefined)?.tenant?.id;
  const fromConv = a.conversation?.tenantId;
  const ids = [fromData, fromConv].filter((v): v is string => typeof v === 'string' && v !== '').map((v) => v.toLowerCase());
  const tenant = ids[0];
  return { ...(tenant ? { tenant } : {}), conflict: ids.some((v) => v !== tenant) };
}

export interface TeamsDeps {
  settings: TeamsSettings;
  redis: Redis;
  prefix: string;
  log: Logger;
  /** API errors and rate-limit waits are counted here. */
  metrics?: OpsMetrics;
  auth?: TeamsAuthOverrides;
}

interface CardCopy {
  ref: Partial<ConversationReference>;
  activityId: string;
  /** For a copy in an approver's 1:1 chat: whose view it is. */
  viewer?: PrincipalId;
}

type CardKind = 'req' | 'ext';
const CARD_TTL_S = 30 * 86_400;
const REF_TTL_S = 365 * 86_400;
const INVOKE_CARD = 'application/vnd.microsoft.card.adaptive';
const INVOKE_MESSAGE = 'application/vnd.microsoft.activity.message';

const cardActivity = (card: CardJson, summary: string): Partial<Activity> => ({
  type: ActivityTypes.Message,
  summary: summary.slice(0, 200),
  attachments: [CardFactory.adaptiveCard(card)],
});

export class TeamsAdapter implements Notifier {
  readonly adapter: CloudAdapter;
  private service: JitService | undefined;
  private readonly poster: ChannelPoster;
  private identities = new Map<string, { principal: PrincipalId; until: number }>();
  private chains = new Map<string, Promise<void>>();

  constructor(private readonly deps: TeamsDeps) {
    const { settings, log } = deps;
    const auth = {
      MicrosoftAppId: settings.appId,
      MicrosoftAppPassword: settings.appPassword ?? '',
      MicrosoftAppType: settings.appType,
      MicrosoftAppTenantId: settings.tenantId ?? '',
      ...deps.auth?.endpoints,
    };
    const issuer = deps.auth?.endpoints?.ToBotFromChannelTokenIssuer ?? AuthenticationConstants.ToBotFromChannelTokenIssuer;
    this.adapter = new CloudAdapter(
      new ConfigurationBotFrameworkAuthentication(auth, deps.auth?.credentialsFactory ?? new ConfigurationServiceClientCredentialFactory(auth), channelTokensOnly(issuer)),
    );
    this.adapter.onTurnError = async (context, error) => {
      log.error('teams: turn failed', { err: error, activity: context.activity.type });
      if (context.activity.type === ActivityTypes.Message) {
        await context.sendActivity(cardActivity(replyCard({ kind: 'rejected', code: 'network', message: 'something went wrong on our side; nothing was changed. Try again in a minute' }), 'error')).catch(() => {});
      }
    };
    this.poster = new ChannelPoster(
      (channel, text) => this.sendTo(this.channelRef(channel), { type: ActivityTypes.Message, text, textFormat: 'markdown' }).then(() => undefined),
      settings.auditIntervalMs,
      (channel, err, dropped) => {
        this.apiFailed(err);
        log.error('teams: audit lines could not be posted (they stay in the audit log)', { channel, err, lines: dropped.length });
      },
    );
  }

  private apiFailed(err: unknown): void {
    const e = err as { statusCode?: number; code?: string; response?: { headers?: { get?(n: string): string | null } } };
    if (e.statusCode === 429) {
      const ra = Number(e.response?.headers?.get?.('retry-after') ?? 0);
      this.deps.metrics?.chatRateLimited('teams', Number.isFinite(ra) ? ra : 0);
    }
    this.deps.metrics?.chatApiError('teams', String(e.code ?? e.statusCode ?? 'error'));
  }

  bind(service: JitService): void {
    this.service = service;
  }

  async close(): Promise<void> {
    await this.poster.close(2000);
  }

  flushAudit(): Promise<void> {
    return this.poster.flush();
  }

  private svc(): JitService {
    if (!this.service) throw new Error('teams adapter used before bind()');
    return this.service;
  }

  private book(): PolicyBook {
    return this.svc().policyBook();
  }

  private key(...parts: string[]): string {
    return [this.deps.prefix, 'teams', ...parts].join(':');
  }

  // ------------------------------------------------------------------ HTTP

  readonly route: Route = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (url.pathname !== TEAMS_PATH) return false;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST only');
      return true;
    }
    const unauthenticated = !this.deps.settings.appId;
    if (unauthenticated) this.refuseForeign(req);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req, CHAT_MAX_BODY)) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'the body must be a Bot Framework activity (JSON)');
    }
    if (unauthenticated && (typeof body.serviceUrl !== 'string' || !sameService(body.serviceUrl, this.deps.settings.serviceUrl))) {
      // Replies and member look-ups go to the activity's serviceUrl: pinned to TEAMS_SERVICE_URL.
      throw new HttpError(403, 'unauthenticated Teams mode: the activity\'s serviceUrl must be TEAMS_SERVICE_URL');
    }
    // botbuilder expects Express-like request / response objects.
    const shimReq = { body, headers: req.headers as Record<string, string | string[] | undefined>, method: req.method ?? 'POST' };
    const shimRes = {
      socket: req.socket,
      status(code: number) {
        res.statusCode = code;
        return shimRes;
      },
      header(name: string, value: unknown) {
        if (!res.headersSent) res.setHeader(name, String(value));
        return shimRes;
      },
      send(payload?: unknown) {
        if (res.writableEnded) return shimRes;
        if (payload === undefined || payload === null) res.end();
        else if (typeof payload === 'string' || Buffer.isBuffer(payload)) res.end(payload);
        else {
          if (!res.headersSent) res.setHeader('content-type', 'application/json; charset=utf-8');
          res.end(JSON.stringify(payload));
        }
        return shimRes;
      },
      end() {
        if (!res.writableEnded) res.end();
        return shimRes;
      },
    };
    await this.adapter.process(shimReq, shimRes, (context) => this.onTurn(context));
    return true;
  };

  /**
   * Unauthenticated mode (TEAMS_ALLOW_UNAUTHENTICATED, no app id): anyone who can POST here is
   * believed about who they are, so only a local tool may: JSON only (a browser cannot send it
   * cross-site without a preflight nobody answers), no cross-site request, no proxy, a loopback Host.
   */
  private refuseForeign(req: IncomingMessage): void {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'unauthenticated Teams mode: the body must be application/json');
    if (req.headers.origin !== undefined || (req.headers['sec-fetch-site'] !== undefined && req.headers['sec-fetch-site'] !== 'none')) {
      throw new HttpError(403, 'unauthenticated Teams mode refuses requests from web pages');
    }
    refuseNonLocal(req, 'unauthenticated Teams mode');
  }

  /** In unauthenticated mode every outgoing call goes to TEAMS_SERVICE_URL, whatever a stored reference says. */
  private pinned(ref: Partial<ConversationReference>): Partial<ConversationReference> {
    return this.deps.settings.appId ? ref : { ...ref, serviceUrl: this.deps.settings.serviceUrl };
  }

  // ------------------------------------------------------------------ incoming

  private async onTurn(context: TurnContext): Promise<void> {
    const a = context.activity;
    if (!this.tenantAllowed(a)) return this.refuseTenant(context);
    await this.remember(context);
    if (a.type === ActivityTypes.Message) return this.onMessage(context);
    if (a.type === ActivityTypes.Invoke && a.name === 'adaptiveCard/action') return this.onAction(context);
    if (a.type === ActivityTypes.ConversationUpdate) return; // references were stored above
  }

  private tenantAllowed(a: Activity): boolean {
    const allowed = this.deps.settings.allowedTenants;
    if (allowed.length === 0) return true;
    const { tenant, conflict } = tenantOf(a);
    return !conflict && tenant !== undefined && allowed.includes(tenant);
  }

  /** A foreign tenant: a refusal, and nothing read (no member look-up) or stored (no reference, no dedupe key). */
  private async refuseTenant(context: TurnContext): Promise<void> {
    const a = context.activity;
    const { tenant } = tenantOf(a);
    this.deps.log.warn('teams: activity from a tenant that is not allowed refused (TEAMS_ALLOWED_TENANTS)', { tenant: tenant ?? 'none', type: a.type, from: a.from?.aadObjectId });
    const message = `jit-bot answers only the Microsoft 365 organisations it is set up for, and yours (tenant ${tenant ?? 'unknown'}) is not one of them. Nothing was read or changed.`;
    if (a.type === ActivityTypes.Message) {
      await context.sendActivity(cardActivity(replyCard({ kind: 'rejected', code: 'forbidden', message }), 'jit-bot'));
    } else if (a.type === ActivityTypes.Invoke) {
      await context.sendActivity({ type: ActivityTypes.InvokeResponse, value: { status: 200, body: { statusCode: 200, type: INVOKE_MESSAGE, value: `✗ ${message}` } } });
    }
  }

  /** Stores the conversation reference (for proactive messages) and the member's Teams id. */
  private async remember(context: TurnContext): Promise<void> {
    const a = context.activity;
    const ref = TurnContext.getConversationReference(a);
    const convType = a.conversation?.conversationType;
    const multi = this.deps.redis.multi();
    if (a.conversation?.id) multi.set(this.key('ref', 'conv', a.conversation.id), JSON.stringify(ref), 'EX', REF_TTL_S);
    const principal = a.from?.aadObjectId ? await this.principalOf(context).catch(() => null) : null;
    if (principal && a.from?.id) {
      multi.set(this.key('member', principal), JSON.stringify({ id: a.from.id, aad: a.from.aadObjectId }), 'EX', REF_TTL_S);
      if (convType === 'personal') multi.set(this.key('ref', 'user', principal), JSON.stringify(ref), 'EX', REF_TTL_S);
    }
    await multi.exec();
  }

  /** The principal behind the authenticated activity's sender (AAD object id; never card data). */
  private async principalOf(context: TurnContext): Promise<PrincipalId> {
    const from = context.activity.from;
    const aad = from?.aadObjectId;
    if (!aad) throw new Error('this Teams activity has no AAD object id; jit-bot answers only users of your tenant');
    const principals = this.book().principals;
    for (const [principal, info] of Object.entries(principals)) if (info.teams && info.teams.toLowerCase() === aad.toLowerCase()) return principal;
    // A principal pinned to a Teams account (`teams: <AAD object id>`) is that account only.
    const pinnedElsewhere = (upn: string) => {
      const pin = principals[upn]?.teams;
      return pin !== undefined && pin.toLowerCase() !== aad.toLowerCase();
    };
    const hit = this.identities.get(aad);
    if (hit && hit.until > Date.now() && !pinnedElsewhere(hit.principal)) return hit.principal;
    const member = await TeamsInfo.getMember(context, from.id);
    const upn = (member.userPrincipalName ?? member.email ?? '').trim().toLowerCase();
    if (!upn.includes('@')) {
      throw new Error(`your Teams account (${aad}) has no UPN or email jit-bot can use; ask a JIT Admin to add "teams: ${aad}" to your entry under principals in the policy file`);
    }
    if (pinnedElsewhere(upn)) {
      throw new Error(`${upn} is mapped to another Teams account under principals in the policy file, so your Teams account (${aad}) cannot act as ${upn}`);
    }
    this.identities.set(aad, { principal: upn, until: Date.now() + this.deps.settings.userCacheTtlMs });
    return upn;
  }

  private async onMessage(context: TurnContext): Promise<void> {
    const a = context.activity;
    // Bot Framework may redeliver an activity it thinks timed out: handle each id once.
    if (a.id && (await this.deps.redis.set(this.key('seen', a.conversation.id, a.id), '1', 'EX', 3600, 'NX')) !== 'OK') return;
    const text = TurnContext.removeRecipientMention(a).replace(/<[^>]+>/g, ' ').replace(/&nbsp;/g, ' ').trim().replace(/^jit\s+/i, '');
    let card: CardJson;
    try {
      const principal = await this.principalOf(context);
      const reply = await this.svc().execute(principal, text || 'help', {
        channel: 'teams',
        replyTo: a.conversation.id,
        ...(a.localTimezone ? { timeZone: a.localTimezone } : {}),
      });
      card = replyCard(reply);
    } catch (err) {
      card = this.failure(err);
    }
    await context.sendActivity(cardActivity(card, 'jit-bot'));
  }

  private failure(err: unknown): CardJson {
    if (isJitError(err)) return replyCard({ kind: 'rejected', code: err.code, message: err.message, ...(err.example ? { example: err.example } : {}) });
    if (err instanceof Error && /principals in the policy file|AAD object id/.test(err.message)) return replyCard({ kind: 'rejected', code: 'forbidden', message: err.message });
    this.deps.log.error('teams: command failed', { err });
    return replyCard({ kind: 'rejected', code: 'network', message: 'something went wrong on our side; nothing was changed. Try again in a minute' });
  }

  private async onAction(context: TurnContext): Promise<void> {
    const value = (context.activity.value ?? {}) as { action?: { verb?: unknown; data?: Record<string, unknown> } };
    const verb = String(value.action?.verb ?? '');
    const data = value.action?.data ?? {};
    const answer = async (body: { statusCode: number; type: string; value: unknown }) => {
      await context.sendActivity({ type: ActivityTypes.InvokeResponse, value: { status: 200, body } });
    };
    const say = (text: string) => answer({ statusCode: 200, type: INVOKE_MESSAGE, value: text });
    const show = (card: CardJson) => answer({ statusCode: 200, type: INVOKE_CARD, value: card });
    let principal: PrincipalId;
    try {
      principal = await this.principalOf(context);
    } catch (err) {
      return say(`✗ ${err instanceof Error ? err.message : String(err)}`);
    }
    const result = await runCardAction(this.svc(), principal, verb, data, (req, scope, viewer, outcome) => this.cardFor(req, scope, viewer, outcome), (msg, fields) =>
      this.deps.log.error(`teams: ${msg}`, fields),
    );
    return result.kind === 'card' ? show(result.card) : say(result.text);
  }

  /** The approval card as `viewer` should see it (buttons only if they may decide now). */
  async cardFor(req: AccessRequest, scope: DecisionScope, viewer?: PrincipalId, outcome?: 'approved' | 'denied'): Promise<CardJson> {
    let canDecide = false;
    if (viewer) {
      canDecide = await this.svc()
        .checkDecide(viewer, req, 'approve', scope)
        .then(() => true, () => false);
    }
    const escalatedTo = req.escalatedAt ? this.escalationApprovers(req) : [];
    return approvalCard(req, {
      scope,
      quorum: this.quorumOf(req),
      canDecide,
      refreshUserIds: await this.approverTeamsIds(req),
      ...(outcome ? { outcome } : {}),
      ...(escalatedTo.length ? { escalatedTo } : {}),
    });
  }

  private escalationApprovers(req: AccessRequest): PrincipalId[] {
    const target = this.book().targets[req.target];
    const esc = target ? effectivePolicy(this.book(), target).approval.escalation : undefined;
    return esc ? expandRefs(this.book(), esc.approvers) : [];
  }

  private quorumOf(req: AccessRequest): number {
    const target = this.book().targets[req.target];
    return target ? effectivePolicy(this.book(), target).approval.quorum : 1;
  }

  /** Teams user ids (29:…) of the request's approvers, as far as they have talked to the bot. */
  private async approverTeamsIds(req: AccessRequest): Promise<string[]> {
    if (req.status !== 'pending' && !(req.status === 'active' && req.pendingExtension)) return [];
    const approvers = await this.svc().approversFor(req);
    if (approvers.length === 0) return [];
    const raw = await this.deps.redis.mget(...approvers.map((p) => this.key('member', p)));
    return raw.flatMap((v) => (v ? [(JSON.parse(v) as { id: string }).id] : []));
  }

  // ------------------------------------------------------------------ outgoing

  private channelRef(channelId: string): Partial<ConversationReference> {
    return {
      channelId: 'msteams',
      serviceUrl: this.deps.settings.serviceUrl,
      conversation: { id: channelId, isGroup: true, conversationType: 'channel', name: '', ...(this.deps.settings.tenantId ? { tenantId: this.deps.settings.tenantId } : {}) },
      bot: { id: this.deps.settings.appId || 'jit-bot', name: 'jit-bot' },
    };
  }

  private async refFor(conversationId: string): Promise<Partial<ConversationReference>> {
    const raw = await this.deps.redis.get(this.key('ref', 'conv', conversationId));
    return raw ? (JSON.parse(raw) as Partial<ConversationReference>) : this.channelRef(conversationId);
  }

  private async userRef(principal: PrincipalId): Promise<Partial<ConversationReference> | null> {
    const raw = await this.deps.redis.get(this.key('ref', 'user', principal));
    return raw ? (JSON.parse(raw) as Partial<ConversationReference>) : null;
  }

  private async sendTo(ref: Partial<ConversationReference>, activity: Partial<Activity>): Promise<string | undefined> {
    let id: string | undefined;
    await this.adapter.continueConversationAsync(this.deps.settings.appId, this.pinned(ref), async (ctx) => {
      id = (await ctx.sendActivity(activity))?.id;
    });
    return id;
  }

  private async dm(principal: PrincipalId, card: CardJson, summary: string): Promise<CardCopy | null> {
    const ref = await this.userRef(principal);
    if (!ref) {
      this.deps.log.warn('teams: no 1:1 conversation with this principal yet (they must install the app or message the bot once); not sent', { principal });
      return null;
    }
    const activityId = await this.sendTo(ref, cardActivity(card, summary));
    return activityId ? { ref, activityId, viewer: principal } : null;
  }

  private async postCards(kind: CardKind, r: AccessRequest, route: PlatformRoute | undefined, approvers: PrincipalId[]): Promise<void> {
    if (!route) return;
    const scope: DecisionScope = kind === 'ext' ? 'extension' : 'request';
    const summary = `${kind === 'ext' ? 'Extension' : 'Access request'} ${r.id}: ${r.requester} on ${r.target}`;
    const posts: Array<Promise<CardCopy | null>> = [];
    if (route.channel) {
      const channel = route.channel;
      posts.push(
        (async () => {
          const ref = await this.refFor(channel);
          const activityId = await this.sendTo(ref, cardActivity(await this.cardFor(r, scope), summary));
          return activityId ? { ref, activityId } : null;
        })(),
      );
    }
    if (route.dm) for (const p of approvers) posts.push((async () => this.dm(p, await this.cardFor(r, scope, p), summary))());
    const copies = (await Promise.allSettled(posts)).flatMap((s) => {
      if (s.status === 'rejected') {
        this.apiFailed(s.reason);
        this.deps.log.warn('teams: approval card not posted', { request: r.id, err: s.reason });
        return [];
      }
      return s.value ? [s.value] : [];
    });
    if (copies.length === 0) return;
    const key = this.key('cards', kind, r.id);
    await this.deps.redis.multi().sadd(key, ...copies.map((c) => JSON.stringify(c))).expire(key, CARD_TTL_S).exec();
  }

  /** Updates every copy of a request's card with updateActivity, one update round at a time per request. */
  private updateCards(kind: CardKind, r: AccessRequest, outcome?: 'approved' | 'denied'): Promise<void> {
    const chainKey = `${kind}:${r.id}`;
    const run = async () => {
      const fresh = (await this.svc().get(r.id)) ?? r;
      const copies = (await this.deps.redis.smembers(this.key('cards', kind, r.id))).map((c) => JSON.parse(c) as CardCopy);
      const scope: DecisionScope = kind === 'ext' ? 'extension' : 'request';
      await Promise.all(
        copies.map(async (copy) => {
          try {
            const card = await this.cardFor(fresh, scope, copy.viewer, outcome);
            await this.adapter.continueConversationAsync(this.deps.settings.appId, this.pinned(copy.ref), async (ctx) => {
              await ctx.updateActivity({ ...cardActivity(card, `${r.id} ${fresh.status}`), id: copy.activityId });
            });
          } catch (err) {
            this.apiFailed(err);
            this.deps.log.warn('teams: card not updated', { request: r.id, err });
          }
        }),
      );
    };
    const next = (this.chains.get(chainKey) ?? Promise.resolve()).then(run);
    const settled = next.catch(() => {});
    this.chains.set(chainKey, settled);
    void settled.then(() => {
      if (this.chains.get(chainKey) === settled) this.chains.delete(chainKey);
    });
    return next;
  }

  async notify(n: Notification): Promise<void> {
    const r = n.request;
    const target = this.book().targets[r.target];
    const fromTeams = r.origin.channel === 'teams';
    const tell = async (card: CardJson, summary: string) => {
      if (fromTeams) await this.dm(r.requester, card, summary);
    };
    switch (n.kind) {
      case 'approval_needed':
        return this.postCards('req', r, routeOn(n.route, 'teams'), n.approvers ?? []);
      case 'extension_needed':
        return this.postCards('ext', r, routeOn(n.route, 'teams'), n.approvers ?? []);
      case 'escalated':
        await this.updateCards('req', r);
        return this.postCards('req', r, { dm: true }, n.approvers ?? []);
      case 'approval_progress':
        return this.updateCards(r.status === 'active' && r.pendingExtension ? 'ext' : 'req', r);
      case 'approved':
      case 'cancelled':
        return this.updateCards('req', r);
      case 'activated':
        await this.updateCards('req', r);
        if (target) await tell(activeCard(r, connectionsFor(target, r.ports, r.rules)), `${r.target} is open`);
        return;
      case 'expiring':
        return tell(expiringCard(r, n.extendOptionsMs ?? []), `${r.target} closes soon`);
      default: {
        if (n.kind === 'extended' || n.kind === 'extension_denied') await this.updateCards('ext', r, n.kind === 'extended' ? 'approved' : 'denied');
        else await this.updateCards('req', r);
        const notice = requesterNotice(n.kind, r, n.actor);
        return tell(noticeCard(r, notice.headline, COLORS[notice.tone]), notice.title);
      }
    }
  }

  async audit(event: AuditEvent): Promise<void> {
    const target = this.book().targets[event.target];
    const channel = (target ? effectivePolicy(this.book(), target).channels.teams?.audit : undefined) ?? this.deps.settings.auditChannel;
    if (channel) this.poster.enqueue(channel, auditLine(event));
  }
}
