// Microsoft Teams, on botbuilder: `jit …` to the bot (1:1 or @mention), replies as Adaptive Cards,
// approvals with Universal Actions (Action.Execute → `adaptiveCard/action` invoke answered with
// the updated card; refresh.userIds gives approvers the buttons); as a ChatPlatform, proactive
// posts, updates and DMs through stored conversation references, for the shared notifier.
// Mounted on the project's one HTTP server at POST /api/messages; incoming activities are
// authenticated (JWT) by the CloudAdapter whenever an app id is set, and only tokens the Bot
// Framework channel service issued are accepted (not the emulator / skill tokens botbuilder also
// accepts: the bot's own credentials can mint those; auth.ts). Activities from a tenant outside
// the allow-list are refused before anything is read or stored. Conversation references, members
// and who a sender is: conversations.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ActivityTypes,
  CardFactory,
  CloudAdapter,
  ConfigurationBotFrameworkAuthentication,
  ConfigurationServiceClientCredentialFactory,
  TurnContext,
  type Activity,
  type ConversationReference,
} from 'botbuilder';
import { AuthenticationConstants } from 'botframework-connector';
import type { Redis } from 'ioredis';
import { approvalCardOf } from '../../app/chat/notifier.js';
import type { ApprovalCard, ChatMessage, Destination, HomeViewsPort } from '../../app/chat/platform.js';
import type { OpsMetrics } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import { isJitError } from '../../core/errors.js';
import { cardFallbackLine, cardText } from '../../core/messages.js';
import type { PolicyBook } from '../../core/policy.js';
import type { AuditEvent, PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { CHAT_MAX_BODY, HttpError, readBody, type Route } from '../../server.js';
import { expressShim, refuseForeign } from './http.js';
import { runCardAction, type CardView } from '../chat/card-actions.js';
import { TeamsHomes } from './home.js';
import { counted, type ChatAdapter } from '../chat/platforms.js';
import { channelTokensOnly, sameService, tenantOf, type TeamsAuthOverrides } from './auth.js';
import { TeamsConversations } from './conversations.js';
import { COLORS, activeCard, auditLine, cardOf, expiringCard, mdEsc, noticeCard, replyCard, type CardJson } from './cards.js';

export const TEAMS_PATH = '/api/messages';
export type { TeamsAuthOverrides };

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

export interface TeamsDeps {
  settings: TeamsSettings;
  redis: Redis;
  prefix: string;
  log: Logger;
  /** API errors and rate-limit waits are counted here. */
  metrics?: OpsMetrics;
  auth?: TeamsAuthOverrides;
}

/** A posted message, as `post` returns its reference (JSON): the conversation and the activity id. */
interface Posted {
  ref: Partial<ConversationReference>;
  activityId: string;
}

const INVOKE_CARD = 'application/vnd.microsoft.card.adaptive';
const INVOKE_MESSAGE = 'application/vnd.microsoft.activity.message';

const cardActivity = (card: CardJson, summary: string): Partial<Activity> => ({
  type: ActivityTypes.Message,
  summary: summary.slice(0, 200),
  attachments: [CardFactory.adaptiveCard(card)],
});

export class TeamsAdapter implements ChatAdapter {
  readonly name = 'teams';
  readonly webhook = { path: TEAMS_PATH, maxBody: CHAT_MAX_BODY };
  readonly auditFeed: { channel?: string; intervalMs: number };
  readonly adapter: CloudAdapter;
  private service: JitService | undefined;
  private views: ChatViews | undefined;
  private readonly homeCards: TeamsHomes;
  private readonly conversations: TeamsConversations;

  constructor(private readonly deps: TeamsDeps) {
    const { settings, log } = deps;
    this.auditFeed = { ...(settings.auditChannel ? { channel: settings.auditChannel } : {}), intervalMs: settings.auditIntervalMs };
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
    this.conversations = new TeamsConversations({ redis: deps.redis, key: (...parts) => this.key(...parts), settings, book: () => this.book() });
    this.homeCards = new TeamsHomes({
      redis: deps.redis,
      key: (...parts) => this.key(...parts),
      proactive: (ref, fn) => this.call(this.proactive(ref, fn)),
      log: deps.log,
      principalOf: (context) => this.conversations.principalOf(context),
      host: () =>
        this.views && {
          service: this.svc(),
          views: this.views,
          platform: 'teams',
          view: async (req, scope, viewer, outcome) => this.render(await approvalCardOf(this.svc(), req, scope, viewer, outcome)),
          log: (msg, fields) => this.deps.log.error(`teams: ${msg}`, fields),
          refreshUserIds: (principal) => this.conversations.memberIds([principal]),
        },
    });
    this.adapter.onTurnError = async (context, error) => {
      log.error('teams: turn failed', { err: error, activity: context.activity.type });
      if (context.activity.type === ActivityTypes.Message) {
        await context.sendActivity(cardActivity(replyCard({ kind: 'rejected', code: 'network', message: 'something went wrong on our side; nothing was changed. Try again in a minute' }), 'error')).catch(() => {});
      }
    };
  }

  private apiFailed(err: unknown): void {
    const e = err as { statusCode?: number; code?: string; response?: { headers?: { get?(n: string): string | null } } };
    if (e.statusCode === 429) {
      const ra = Number(e.response?.headers?.get?.('retry-after') ?? 0);
      this.deps.metrics?.chatRateLimited('teams', Number.isFinite(ra) ? ra : 0);
    }
    this.deps.metrics?.chatApiError('teams', this.failure(err).code);
  }

  /** A Bot Connector refusal (4xx but 408 / 429) will not pass if sent again. */
  failure(err: unknown): { code: string; permanent: boolean } {
    const e = (err ?? {}) as { statusCode?: number; code?: string };
    const status = e.statusCode ?? 0;
    return { code: String(e.code ?? e.statusCode ?? 'error'), permanent: status >= 400 && status < 500 && status !== 408 && status !== 429 };
  }

  health(): string {
    return 'ok';
  }

  bind(service: JitService, views?: ChatViews): void {
    this.service = service;
    this.views = views;
  }

  /** The home cards: who was posted one, and the last one posted to a principal updated (the shared notifier calls it on every change that concerns them). */
  readonly homes: HomeViewsPort = {
    viewers: () => this.homeCards.viewers.viewers(),
    refresh: (principal) => this.homeCards.refreshHome(principal),
  };

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
    if (url.pathname !== this.webhook.path) return false;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST only');
      return true;
    }
    const unauthenticated = !this.deps.settings.appId;
    if (unauthenticated) refuseForeign(req);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req, this.webhook.maxBody)) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'the body must be a Bot Framework activity (JSON)');
    }
    if (unauthenticated && (typeof body.serviceUrl !== 'string' || !sameService(body.serviceUrl, this.deps.settings.serviceUrl))) {
      // Replies and member look-ups go to the activity's serviceUrl: pinned to TEAMS_SERVICE_URL.
      throw new HttpError(403, 'unauthenticated Teams mode: the activity\'s serviceUrl must be TEAMS_SERVICE_URL');
    }
    const { shimReq, shimRes } = expressShim(req, res, body);
    await this.adapter.process(shimReq, shimRes, (context) => this.onTurn(context));
    return true;
  };

  /** In unauthenticated mode every outgoing call goes to TEAMS_SERVICE_URL, whatever a stored reference says. */
  private pinned(ref: Partial<ConversationReference>): Partial<ConversationReference> {
    return this.deps.settings.appId ? ref : { ...ref, serviceUrl: this.deps.settings.serviceUrl };
  }

  // ------------------------------------------------------------------ incoming

  private async onTurn(context: TurnContext): Promise<void> {
    const a = context.activity;
    if (!this.tenantAllowed(a)) return this.refuseTenant(context);
    await this.conversations.remember(context);
    if (a.type === ActivityTypes.Message) return this.onMessage(context);
    if (a.type === ActivityTypes.Invoke && a.name === 'adaptiveCard/action') return this.onAction(context);
    if (a.type === ActivityTypes.ConversationUpdate) return this.homeCards.onInstall(context); // references were stored above
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

  private async onMessage(context: TurnContext): Promise<void> {
    const a = context.activity;
    // Bot Framework may redeliver an activity it thinks timed out: handle each id once.
    if (a.id && (await this.deps.redis.set(this.key('seen', a.conversation.id, a.id), '1', 'EX', 3600, 'NX')) !== 'OK') return;
    const text = TurnContext.removeRecipientMention(a).replace(/<[^>]+>/g, ' ').replace(/&nbsp;/g, ' ').trim().replace(/^jit\s+/i, '');
    let card: CardJson;
    try {
      const principal = await this.conversations.principalOf(context);
      if (await this.homeCards.onMessage(context, principal, text)) return;
      const reply = await this.svc().execute(principal, text || 'help', {
        via: 'teams',
        replyTo: a.conversation.id,
        ...(a.localTimezone ? { timeZone: a.localTimezone } : {}),
      });
      card = replyCard(reply);
    } catch (err) {
      card = this.errorCard(err);
    }
    await context.sendActivity(cardActivity(card, 'jit-bot'));
  }

  private errorCard(err: unknown): CardJson {
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
      principal = await this.conversations.principalOf(context);
    } catch (err) {
      return say(`✗ ${err instanceof Error ? err.message : String(err)}`);
    }
    const form = await this.homeCards.onAction(context, principal, verb, data);
    if (form) return form.card ? show(form.card) : say(form.text ?? '');
    const view: CardView = async (req, scope, viewer, outcome) => this.render(await approvalCardOf(this.svc(), req, scope, viewer, outcome));
    const result = await runCardAction(this.svc(), principal, verb, data, view, (msg, fields) =>
      this.deps.log.error(`teams: ${msg}`, fields),
    );
    return result.kind === 'card' ? show(result.card) : say(result.text);
  }

  /** An approval card as Teams shows it: deciders who talked to the bot get a refreshed view with buttons. */
  private async render(card: ApprovalCard): Promise<CardJson> {
    return cardOf(card, await this.conversations.memberIds(card.deciders));
  }

  // ------------------------------------------------------------------ outgoing

  /**
   * Runs `fn` in a proactive turn of the conversation and fails with its error (the adapter would
   * hand it to onTurnError and return as if it had worked).
   */
  private async proactive<T>(ref: Partial<ConversationReference>, fn: (ctx: TurnContext) => Promise<T>): Promise<T> {
    let result: Promise<T> | undefined;
    await this.adapter.continueConversationAsync(this.deps.settings.appId, this.pinned(ref), async (ctx) => {
      result = fn(ctx);
      await result.catch(() => {}); // answered below, outside the turn
    });
    if (!result) throw new Error('teams: the proactive turn did not run');
    return result;
  }

  private async sendTo(ref: Partial<ConversationReference>, activity: Partial<Activity>): Promise<string | undefined> {
    return this.proactive(ref, async (ctx) => (await ctx.sendActivity(activity))?.id);
  }

  /** A Bot Connector call, its failure counted. */
  private call<T>(p: Promise<T>): Promise<T> {
    return counted(p, (err) => this.apiFailed(err));
  }

  /** A principal's 1:1 chat with the bot (kept when they installed the app or wrote to it). */
  async recipient(principal: PrincipalId): Promise<string | null> {
    return (await this.conversations.userRef(principal))?.conversation?.id ?? null;
  }

  async post(to: Destination, m: ChatMessage): Promise<string> {
    const ref = to.kind === 'dm' ? await this.conversations.userRef(to.principal) : await this.conversations.refFor(to.id);
    if (!ref) throw new Error(`teams: no conversation with ${to.id}`);
    const activityId = await this.call(this.sendTo(ref, await this.activity(m)));
    return activityId ? JSON.stringify({ ref, activityId } satisfies Posted) : '';
  }

  async update(posted: string, m: ChatMessage): Promise<void> {
    const { ref, activityId } = JSON.parse(posted) as Posted;
    const activity = await this.activity(m, true);
    await this.call(this.proactive(ref, (ctx) => ctx.updateActivity({ ...activity, id: activityId })));
  }

  auditLine(event: AuditEvent): string {
    return auditLine(event);
  }

  async postText(channel: string, text: string): Promise<void> {
    await this.call(this.sendTo(this.conversations.channelRef(channel), { type: ActivityTypes.Message, text, textFormat: 'markdown' }));
  }

  /** A message as a Teams activity: an Adaptive Card with a preview line, or markdown text for a card's stand-in. */
  private async activity(m: ChatMessage, updating = false): Promise<Partial<Activity>> {
    switch (m.kind) {
      case 'approval': {
        const r = m.card.request;
        const summary = updating ? `${r.id} ${r.status}` : `${m.card.scope === 'extension' ? 'Extension' : 'Access request'} ${r.id}: ${r.requester} on ${r.target}`;
        return cardActivity(await this.render(m.card), summary);
      }
      case 'card_fallback': {
        const c = m.card;
        return { type: ActivityTypes.Message, textFormat: 'markdown', text: mdEsc(`${cardText(c.request, c.scope, c.quorum, c.outcome)}\n\n${cardFallbackLine(c.request.id, m.error, 'jit')}`) };
      }
      case 'notice':
        return cardActivity(noticeCard(m.request, m.notice.headline, COLORS[m.notice.tone]), m.notice.title);
      case 'active':
        return cardActivity(activeCard(m.request, m.connections), `${m.request.target} is open`);
      case 'expiring':
        return cardActivity(expiringCard(m.request, m.extendOptionsMs), `${m.request.target} closes soon`);
    }
  }
}
