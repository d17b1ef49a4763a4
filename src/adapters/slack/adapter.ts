// Slack, on @slack/bolt: the `/jit` slash command, Approve / Deny buttons (Deny asks for a reason
// in a modal), Revoke and Extend buttons, message updates with chat.update, DMs to requesters
// and approvers, and the audit channel. Bolt's HTTPReceiver checks every request's v0 signature
// and timestamp; it is mounted on the project's one HTTP server at POST /slack/events. Every
// request must also come from the workspace (or Enterprise Grid org) the bot token belongs to
// (auth.test), else it is refused before any listener runs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, HTTPReceiver, LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { Notification, Notifier, OpsMetrics } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import { isJitError } from '../../core/errors.js';
import { effectivePolicy, type PolicyBook } from '../../core/policy.js';
import { requesterNotice } from '../../core/messages.js';
import { connectionsFor } from '../../core/reply.js';
import { REQUEST_ID_RE } from '../../core/parse.js';
import { FINAL_STATUSES, type AccessRequest, type AuditEvent, type PrincipalId } from '../../core/types.js';
import { routeOn, type PlatformRoute } from '../../core/workflow.js';
import type { Logger } from '../../log.js';
import { CHAT_MAX_BODY, readRaw, type Route } from '../../server.js';
import {
  ACTIONS,
  DENY_MODAL,
  activeMessage,
  approvalCard,
  auditLine,
  cardFallbackText,
  denyModal,
  esc,
  expiringMessage,
  extensionCard,
  noticeMessage,
  replyMessage,
  type SlackMessage,
} from './blocks.js';
import { SlackDirectory, UnresolvedUserError } from './directory.js';
import { ChannelPoster } from '../chat/poster.js';

export const SLACK_PATH = '/slack/events';

export interface SlackSettings {
  signingSecret: string;
  botToken: string;
  /** Base URL of the Web API, ending in `/api/` (tests, Enterprise Grid proxies). */
  apiUrl?: string;
  /** Fallback audit channel when the policy names none for a target. */
  auditChannel?: string;
  /** At most one audit message per channel per this interval (Slack: about 1 per second). */
  auditIntervalMs: number;
  /** How long a Slack user → principal lookup is trusted. */
  userCacheTtlMs: number;
}

export interface SlackDeps {
  settings: SlackSettings;
  redis: Redis;
  prefix: string;
  log: Logger;
  /** API errors and rate-limit waits are counted here. */
  metrics?: OpsMetrics;
}

type Client = InstanceType<typeof webApi.WebClient>;
type CardKind = 'req' | 'ext';
interface CardRef {
  channel: string;
  ts: string;
}

const CARD_TTL_S = 30 * 86_400;
const SEEN_TTL_S = 3600;

function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.WARN;
  const text = (msgs: unknown[]) => msgs.map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: () => {},
    info: () => {},
    warn: (...m: unknown[]) => log.warn(`slack: ${text(m)}`),
    error: (...m: unknown[]) => log.error(`slack: ${text(m)}`),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** The Web API client's options (ours and Bolt's): base URL, a few quick retries, our logger. */
const webClientOptions = ({ settings, log }: SlackDeps) => ({
  ...(settings.apiUrl ? { slackApiUrl: settings.apiUrl } : {}),
  retryConfig: { retries: 2, factor: 2, minTimeout: 300, maxTimeout: 3000, randomize: true },
  logger: boltLogger(log),
});

/** Where the bot is installed, from auth.test. */
export interface SlackWorkspace {
  teamId: string;
  enterpriseId?: string;
  /** Installed org-wide on an Enterprise Grid: any workspace of the org is home. */
  enterpriseInstall: boolean;
}

/**
 * Why a verified request does not come from the installed workspace, or null when it does. The
 * team / enterprise ids are read from every place Slack puts them in commands, interactivity and
 * event payloads (and from Bolt's own reading of them); each one present must match.
 */
export function foreignWorkspace(home: SlackWorkspace, body: unknown, context: { teamId?: string; enterpriseId?: string } = {}): string | null {
  const b = (body ?? {}) as {
    team_id?: unknown;
    enterprise_id?: unknown;
    team?: { id?: unknown; enterprise_id?: unknown } | null;
    enterprise?: { id?: unknown } | null;
    user?: { team_id?: unknown } | null;
    authorizations?: Array<{ team_id?: unknown; enterprise_id?: unknown }>;
  };
  const ids = (...v: unknown[]) => [...new Set(v.filter((x): x is string => typeof x === 'string' && x !== ''))];
  const auth = b.authorizations?.[0];
  const teams = ids(context.teamId, b.team_id, b.team?.id, auth?.team_id);
  const enterprises = ids(context.enterpriseId, b.enterprise_id, b.enterprise?.id, b.team?.enterprise_id, auth?.enterprise_id);
  const userTeams = ids(b.user?.team_id);
  if (home.enterpriseId) {
    const other = enterprises.find((e) => e !== home.enterpriseId);
    if (other || enterprises.length === 0) return `Enterprise Grid org ${other ?? '(none)'}`;
    if (home.enterpriseInstall) return null;
    // A workspace install in a Grid org: the workspace itself must match (a member's home team may be another workspace of the org).
    const team = teams.find((t) => t !== home.teamId);
    return team || teams.length === 0 ? `workspace ${team ?? '(none)'}` : null;
  }
  if (enterprises.length > 0) return `Enterprise Grid org ${enterprises[0]}`;
  const team = [...teams, ...userTeams].find((t) => t !== home.teamId);
  return team || teams.length === 0 ? `workspace ${team ?? '(none)'}` : null;
}

const fail = (message: string): SlackMessage => replyMessage({ kind: 'info', message: `✗ ${message}` });

/** How long to wait before our own second try of a card post that failed for a transient reason. */
const CARD_RETRY_MS = 1000;
/** Slack answers that are about the message itself or its destination: posting the same again cannot help. */
const PERMANENT = new Set(['invalid_blocks', 'invalid_blocks_format', 'invalid_arguments', 'msg_too_long', 'channel_not_found', 'not_in_channel', 'is_archived', 'user_not_found', 'cannot_dm_bot', 'restricted_action', 'not_authed', 'invalid_auth', 'account_inactive', 'token_revoked', 'missing_scope']);

export class SlackAdapter implements Notifier {
  readonly app: App;
  readonly client: Client;
  private readonly receiver: HTTPReceiver;
  private readonly directory: SlackDirectory;
  private readonly poster: ChannelPoster;
  private service: JitService | undefined;
  /** Per request, card updates run one after another and never go back to an older version. */
  private chains = new Map<string, Promise<void>>();
  private rendered = new Map<string, number>();

  private constructor(
    private readonly deps: SlackDeps,
    client: Client,
    private readonly ids: { botId?: string; botUserId?: string },
    private home: SlackWorkspace | undefined,
  ) {
    const { settings, log } = deps;
    this.client = client;
    this.receiver = new HTTPReceiver({
      signingSecret: settings.signingSecret,
      endpoints: SLACK_PATH,
      logger: boltLogger(log),
      // Acks go out as soon as a listener calls ack(); the work runs after.
      processBeforeResponse: false,
    });
    // One workspace, one bot token. An explicit authorize: Bolt's own single-token authorization
    // without known bot ids calls auth.test before *every* listener (measured: it doubles the ack
    // time, and ties every ack to Slack's latency); the ids come from our auth.test at start.
    const authorized = { botToken: settings.botToken, ...ids };
    this.app = new App({
      // A fresh object per request: Bolt writes the request's team / enterprise ids into it.
      authorize: async () => ({ ...authorized }),
      receiver: this.receiver,
      logger: boltLogger(log),
      clientOptions: webClientOptions(deps),
    });
    this.directory = new SlackDirectory(
      {
        info: async (user) => {
          const u = (await this.client.users.info({ user })).user;
          if (!u?.id) return undefined;
          return {
            id: u.id,
            ...(u.deleted !== undefined ? { deleted: u.deleted } : {}),
            ...(u.is_bot !== undefined ? { is_bot: u.is_bot } : {}),
            ...(u.tz ? { tz: u.tz } : {}),
            ...(u.profile?.email ? { profile: { email: u.profile.email } } : {}),
          };
        },
        lookupByEmail: async (email) => {
          try {
            const r = await this.client.users.lookupByEmail({ email });
            return r.user?.id ? { id: r.user.id } : undefined;
          } catch (err) {
            if (slackError(err) === 'users_not_found') return undefined;
            throw err;
          }
        },
      },
      () => this.book(),
      settings.userCacheTtlMs,
    );
    this.poster = new ChannelPoster(
      async (channel, text) => {
        await this.client.chat.postMessage({ channel, text, mrkdwn: true, unfurl_links: false, unfurl_media: false });
      },
      settings.auditIntervalMs,
      (channel, err, dropped) => {
        this.apiFailed(err);
        log.error('slack: audit lines could not be posted (they stay in the audit log)', { channel, err, lines: dropped.length });
      },
    );
    // The Web API client waits out 429s itself (Retry-After); count the time.
    for (const c of [this.client, this.app.client]) c.on(webApi.WebClientEvent.RATE_LIMITED, (seconds: number) => deps.metrics?.chatRateLimited('slack', seconds));
    this.register();
  }

  /** True once auth.test succeeded (the bot token works and its ids are known). */
  ready(): boolean {
    return Boolean(this.ids.botUserId);
  }

  private apiFailed(err: unknown): void {
    this.deps.metrics?.chatApiError('slack', slackError(err) ?? (err as { code?: string }).code ?? 'error');
  }

  /** Checks the bot token (auth.test) and builds the adapter. A token Slack refuses stops start-up. */
  static async create(deps: SlackDeps): Promise<SlackAdapter> {
    const { settings, log } = deps;
    const client = new webApi.WebClient(settings.botToken, webClientOptions(deps));
    let ids: { botId?: string; botUserId?: string } = {};
    let home: SlackWorkspace | undefined;
    try {
      const auth = await client.auth.test();
      ids = { ...(auth.bot_id ? { botId: auth.bot_id } : {}), ...(auth.user_id ? { botUserId: auth.user_id } : {}) };
      home = workspaceOf(auth);
      log.info('slack: connected', { team: auth.team, teamId: auth.team_id, enterpriseId: auth.enterprise_id, bot: auth.user });
    } catch (err) {
      const code = slackError(err);
      if (code === 'invalid_auth' || code === 'not_authed' || code === 'account_inactive' || code === 'token_revoked') {
        throw new Error(`SLACK_BOT_TOKEN: Slack refused the token (${code})`);
      }
      log.warn('slack: auth.test failed; starting anyway, Web API calls will be retried', { err });
    }
    return new SlackAdapter(deps, client, ids, home);
  }

  private lastAuthTest = 0;

  /** The installed workspace; asked again (at most every 10 s) when auth.test failed at start. */
  private async installed(): Promise<SlackWorkspace | undefined> {
    if (!this.home && Date.now() - this.lastAuthTest >= 10_000) {
      this.lastAuthTest = Date.now();
      try {
        this.home = workspaceOf(await this.client.auth.test());
      } catch (err) {
        this.deps.log.warn('slack: auth.test failed; the workspace of incoming requests cannot be checked, so they are refused', { err });
      }
    }
    return this.home;
  }

  bind(service: JitService): void {
    this.service = service;
  }

  /** The route for the project's HTTP server. */
  readonly route: Route = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (url.pathname !== SLACK_PATH) return false;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST only');
      return true;
    }
    // Bolt 4 buffers the whole body before it checks the signature. The body is read here instead,
    // at most CHAT_MAX_BODY bytes (413 beyond, before the signature check), and handed to Bolt as
    // already buffered (`rawBody`, which its receiver uses as is).
    const rawBody = await readRaw(req, CHAT_MAX_BODY);
    this.receiver.requestListener(Object.assign(req, { rawBody }), res);
    return true;
  };

  async close(): Promise<void> {
    await this.poster.close(2000);
  }

  /** Resolves when every queued audit line was posted. */
  flushAudit(): Promise<void> {
    return this.poster.flush();
  }

  private svc(): JitService {
    if (!this.service) throw new Error('slack adapter used before bind()');
    return this.service;
  }

  private book(): PolicyBook {
    return this.svc().policyBook();
  }

  /** True the first time a Slack interaction (trigger_id) is seen: retries and replays are dropped. */
  private async firstTime(kind: string, key: string | undefined): Promise<boolean> {
    if (!key) return true;
    const ok = await this.deps.redis.set(`${this.deps.prefix}:slack:seen:${kind}:${key}`, '1', 'EX', SEEN_TTL_S, 'NX');
    return ok === 'OK';
  }

  // ------------------------------------------------------------------ incoming

  private register(): void {
    const { log } = this.deps;

    // Before any listener: the request must come from the installed workspace. A refusal reads and
    // changes nothing (no users.info, no Redis); commands get it in the ack, clicks by response_url.
    this.app.use(async (args) => {
      const home = await this.installed();
      const why = home ? foreignWorkspace(home, args.body, args.context) : 'an unconfirmed workspace (auth.test failed)';
      if (!why) return args.next();
      log.warn('slack: request from another workspace refused', { from: why, installed: home?.teamId, enterprise: home?.enterpriseId });
      const text = home
        ? `✗ jit-bot answers only the Slack workspace it is installed in; this request comes from ${why}. Nothing was read or changed.`
        : '✗ jit-bot cannot confirm its Slack workspace right now; nothing was read or changed. Try again in a minute.';
      const body = args.body as { type?: string; command?: string; view?: { callback_id?: string } };
      const { ack, respond } = args as { ack?: (response?: object) => Promise<void>; respond?: (message: object) => Promise<unknown> };
      if (!ack) return;
      if (body.command) return ack({ response_type: 'ephemeral', text });
      if (body.type === 'view_submission' && body.view?.callback_id === DENY_MODAL) return ack({ response_action: 'errors', errors: { reason: text.slice(0, 150) } });
      await ack();
      if (body.type === 'block_actions' && respond) await respond({ response_type: 'ephemeral', replace_original: false, text });
    });

    this.app.command('/jit', async ({ command, ack, respond, context }) => {
      await ack();
      if (!(await this.firstTime('cmd', command.trigger_id))) {
        log.info('slack: repeated slash command ignored', { retry: context.retryNum ?? 0 });
        return;
      }
      let message: SlackMessage;
      try {
        const who = await this.directory.resolve(command.user_id);
        const reply = await this.svc().execute(who.principal, command.text, {
          channel: 'slack',
          replyTo: command.channel_id,
          ...(who.timeZone ? { timeZone: who.timeZone } : {}),
        });
        message = replyMessage(reply);
      } catch (err) {
        message = this.failure(err);
      }
      await this.respondSafely((m) => respond({ response_type: 'ephemeral', ...m }), message);
    });

    /**
     * Every button: ack at once, drop replays (trigger_id seen), read the button value (`parse`
     * answers a string to refuse it), resolve the clicker from the verified payload (nothing in
     * the value names a person), answer privately.
     */
    const onClick =
      <T>(parse: (value: string) => T | string, handle: (principal: PrincipalId, value: T, triggerId: string) => Promise<SlackMessage | void>) =>
      async (args: { ack: () => Promise<void>; body: unknown; action: unknown; respond: (m: object) => Promise<unknown> }) => {
        await args.ack();
        const body = args.body as { user: { id: string }; trigger_id?: string };
        const say = (m: SlackMessage) => this.respondSafely((x) => args.respond({ response_type: 'ephemeral', replace_original: false, ...x }), m);
        if (!(await this.firstTime('act', body.trigger_id))) return void (await say(fail('this click was already handled; nothing changed')));
        const value = parse((args.action as { value?: string }).value ?? '');
        if (typeof value === 'string') return void (await say(fail(value)));
        try {
          const who = await this.directory.resolve(body.user.id);
          const m = await handle(who.principal, value, body.trigger_id ?? '');
          if (m) await say(m);
        } catch (err) {
          await say(this.failure(err));
        }
      };
    const requestId = (v: string) => (REQUEST_ID_RE.test(v) ? { id: v } : 'this button does not name a request; nothing changed');
    const decision = (decision: 'approve' | 'deny', scope: 'request' | 'extension') =>
      onClick(requestId, async (principal, { id }, triggerId) => {
        if (decision === 'approve') return replyMessage(await this.svc().decide(principal, id, 'approve', undefined, scope));
        // Deny asks for a reason first; the clicker is checked before the dialog opens.
        await this.svc().checkDecide(principal, id, 'deny', scope);
        const req = await this.svc().get(id);
        await this.client.views.open({ trigger_id: triggerId, view: denyModal(id, scope, req?.target ?? '') });
      });
    this.app.action(ACTIONS.approve, decision('approve', 'request'));
    this.app.action(ACTIONS.deny, decision('deny', 'request'));
    this.app.action(ACTIONS.extApprove, decision('approve', 'extension'));
    this.app.action(ACTIONS.extDeny, decision('deny', 'extension'));
    this.app.action(ACTIONS.revoke, onClick(requestId, async (principal, { id }) => replyMessage(await this.svc().revoke(principal, id))));
    this.app.action(
      new RegExp(`^${ACTIONS.extend}_\\d+$`),
      onClick(
        (v) => {
          const m = /^(r[0-9a-z]{9}):(\d{1,9})$/.exec(v);
          return m && REQUEST_ID_RE.test(m[1]!) ? { id: m[1]!, addMs: Number(m[2]) } : 'this button does not name an extension; nothing changed';
        },
        async (principal, { id, addMs }) => replyMessage(await this.svc().extend(principal, id, addMs)),
      ),
    );

    this.app.view(DENY_MODAL, async ({ ack, body, view }) => {
      let meta: { requestId?: unknown; scope?: unknown } = {};
      try {
        meta = JSON.parse(view.private_metadata) as typeof meta;
      } catch {
        /* handled below */
      }
      const id = typeof meta.requestId === 'string' ? meta.requestId : '';
      const scope = meta.scope === 'extension' ? 'extension' : 'request';
      const reason = view.state.values.reason?.reason?.value?.trim() || undefined;
      if (!REQUEST_ID_RE.test(id)) {
        await ack({ response_action: 'errors', errors: { reason: 'This dialog does not name a request; nothing changed.' } });
        return;
      }
      try {
        const who = await this.directory.resolve(body.user.id);
        await this.svc().decide(who.principal, id, 'deny', reason, scope);
        await ack();
      } catch (err) {
        await ack({ response_action: 'errors', errors: { reason: this.failure(err).text.slice(0, 150) } });
      }
    });

    this.app.error(async (err) => {
      log.error('slack: listener failed', { err });
    });
  }

  /** Answers through response_url; if Slack refuses the blocks, the same answer as text only. */
  private async respondSafely(send: (m: { text: string; blocks?: SlackMessage['blocks'] }) => Promise<unknown>, m: SlackMessage): Promise<void> {
    try {
      await send(m);
    } catch (err) {
      this.apiFailed(err);
      this.deps.log.warn('slack: answer refused; sent as text', { err });
      await send({ text: m.text });
    }
  }

  private failure(err: unknown): SlackMessage {
    if (isJitError(err)) return replyMessage({ kind: 'rejected', code: err.code, message: err.message, ...(err.example ? { example: err.example } : {}) });
    if (err instanceof UnresolvedUserError) return fail(err.message);
    this.deps.log.error('slack: command failed', { err });
    return fail('something went wrong on our side; nothing was changed. Try again in a minute');
  }

  // ------------------------------------------------------------------ outgoing

  async notify(n: Notification): Promise<void> {
    const r = n.request;
    const target = this.book().targets[r.target];
    const policy = target ? effectivePolicy(this.book(), target) : undefined;
    const quorum = policy?.approval.quorum ?? 1;
    const fromSlack = r.origin.channel === 'slack';
    const dmRequester = async (m: SlackMessage) => {
      if (fromSlack) await this.dm(r.requester, m);
    };
    switch (n.kind) {
      case 'approval_needed':
        await this.postCards('req', r, routeOn(n.route, 'slack'), n.approvers ?? [], approvalCard(r, { quorum }));
        return;
      case 'extension_needed':
        await this.postCards('ext', r, routeOn(n.route, 'slack'), n.approvers ?? [], extensionCard(r, { quorum }));
        return;
      case 'escalated': {
        const added = n.approvers ?? [];
        await this.updateCards('req', r, approvalCard(r, { quorum, escalatedTo: added }));
        await this.postCards('req', r, { dm: true }, added, approvalCard(r, { quorum, escalatedTo: added }));
        return;
      }
      case 'approval_progress':
        if (r.status === 'active' && r.pendingExtension) await this.updateCards('ext', r, extensionCard(r, { quorum }));
        else await this.updateCards('req', r, approvalCard(r, { quorum }));
        return;
      case 'approved':
      case 'cancelled':
        await this.updateCards('req', r, approvalCard(r, { quorum }));
        return;
      case 'activated':
        await this.updateCards('req', r, approvalCard(r, { quorum }));
        if (target) await dmRequester(activeMessage(r, connectionsFor(target, r.ports, r.rules)));
        return;
      case 'expiring':
        await dmRequester(expiringMessage(r, n.extendOptionsMs ?? []));
        return;
      case 'extended':
      case 'extension_denied': {
        const outcome = n.kind === 'extended' ? 'approved' : 'denied';
        await this.updateCards('ext', r, extensionCard(r, { quorum }, outcome));
        await dmRequester(noticeMessage(r, requesterNotice(n.kind, r, n.actor).headline));
        return;
      }
      default:
        await this.updateCards('req', r, approvalCard(r, { quorum }));
        await dmRequester(noticeMessage(r, requesterNotice(n.kind, r, n.actor).headline));
    }
  }

  async audit(event: AuditEvent): Promise<void> {
    const target = this.book().targets[event.target];
    const channel = (target ? effectivePolicy(this.book(), target).channels.slack?.audit : undefined) ?? this.deps.settings.auditChannel;
    if (channel) this.poster.enqueue(channel, auditLine(event));
  }

  private async dm(principal: PrincipalId, m: SlackMessage): Promise<CardRef | null> {
    const user = await this.directory.userOf(principal);
    if (!user) {
      this.deps.log.warn('slack: no Slack user for a principal; DM not sent', { principal });
      return null;
    }
    return this.post(user, m);
  }

  private async post(channel: string, m: { text: string; blocks?: SlackMessage['blocks'] }): Promise<CardRef | null> {
    const res = await this.client.chat.postMessage({ channel, text: m.text, ...(m.blocks ? { blocks: m.blocks } : {}), unfurl_links: false, unfurl_media: false });
    return res.channel && res.ts ? { channel: res.channel, ts: res.ts } : null;
  }

  /**
   * Posts one copy of an approval card. The Web API client already retries network errors, 5xx
   * and 429; a post that still fails for a transient reason is tried once more. If it fails
   * anyway (or Slack refuses the card itself), a plain-text stand-in saying how to decide goes
   * to the same place. `error` is set when the card itself did not go out.
   */
  private async postCard(channel: string, r: AccessRequest, m: SlackMessage): Promise<{ ref: CardRef | null; error?: string; sent: 'card' | 'text' | 'none' }> {
    let error = 'error';
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        return { ref: await this.post(channel, m), sent: 'card' };
      } catch (err) {
        this.apiFailed(err);
        error = slackError(err) ?? (err as { code?: string }).code ?? 'error';
        this.deps.log.warn('slack: approval card not posted', { request: r.id, channel, attempt, err });
        if (PERMANENT.has(error) || attempt === 2) break;
        await new Promise((ok) => setTimeout(ok, CARD_RETRY_MS));
      }
    }
    try {
      return { ref: await this.post(channel, { text: cardFallbackText(m, r.id, error) }), error, sent: 'text' };
    } catch (err) {
      this.apiFailed(err);
      this.deps.log.warn('slack: approval card stand-in not posted either', { request: r.id, channel, err });
      return { ref: null, error, sent: 'none' };
    }
  }

  private cardKey(kind: CardKind, id: string): string {
    return `${this.deps.prefix}:slack:cards:${kind}:${id}`;
  }

  /**
   * Posts an approval card where the route says (channel and/or approvers' DMs) and remembers each
   * copy. A copy Slack refuses is replaced by plain text (see postCard); when no copy reached
   * anyone, the approvers get the plain text by DM. Every fallback is audited
   * (`notify.card_fallback`), so a request nobody could see is on record.
   */
  private async postCards(kind: CardKind, r: AccessRequest, route: PlatformRoute | undefined, approvers: PrincipalId[], m: SlackMessage): Promise<void> {
    if (!route) return;
    const destinations: Array<Promise<{ channel: string; ref: CardRef | null; error?: string; sent: 'card' | 'text' | 'none' } | null>> = [];
    if (route.channel) {
      const channel = route.channel;
      destinations.push(this.postCard(channel, r, m).then((x) => ({ channel, ...x })));
    }
    if (route.dm) {
      for (const p of approvers) {
        destinations.push(
          this.directory.userOf(p).then(async (user) => {
            if (!user) {
              this.deps.log.warn('slack: no Slack user for a principal; DM not sent', { principal: p });
              return null;
            }
            return { channel: user, ...(await this.postCard(user, r, m)) };
          }),
        );
      }
    }
    const outcomes = (await Promise.allSettled(destinations)).flatMap((s) => {
      if (s.status === 'rejected') {
        this.apiFailed(s.reason);
        this.deps.log.warn('slack: approval card not posted', { request: r.id, err: s.reason });
        return [];
      }
      return s.value ? [s.value] : [];
    });
    const refs = outcomes.flatMap((o) => (o.ref ? [o.ref] : []));
    // Nothing reached anyone (the channel is gone, the bot was removed from it ...): DM the
    // approvers the plain text, unless the route already tried their DMs.
    const dmFallback: string[] = [];
    if (refs.length === 0 && outcomes.some((o) => o.error) && !route.dm) {
      const text = cardFallbackText(m, r.id, outcomes.find((o) => o.error)?.error ?? 'error');
      const dms = await Promise.allSettled(approvers.map(async (p) => {
        const user = await this.directory.userOf(p);
        return user ? this.post(user, { text }) : null;
      }));
      for (const [i, d] of dms.entries()) {
        if (d.status === 'fulfilled' && d.value) {
          refs.push(d.value);
          dmFallback.push(approvers[i]!);
        } else if (d.status === 'rejected') this.apiFailed(d.reason);
      }
    }
    for (const o of outcomes.filter((x) => x.error)) {
      const delivered = o.sent === 'text' ? 'text' : dmFallback.length ? 'approver_dms' : 'none';
      await this.svc()
        .auditDelivery(r, 'slack', {
          platform: 'slack',
          card: kind === 'ext' ? 'extension' : 'request',
          destination: o.channel,
          error: o.error ?? 'error',
          delivered,
          ...(delivered === 'approver_dms' ? { approvers: dmFallback.join(' ') } : {}),
        })
        .catch((err: unknown) => this.deps.log.error('slack: could not audit a card fallback', { request: r.id, err }));
    }
    if (refs.length === 0) return;
    const key = this.cardKey(kind, r.id);
    await this.deps.redis.multi().sadd(key, ...refs.map((x) => `${x.channel} ${x.ts}`)).expire(key, CARD_TTL_S).exec();
    this.rendered.set(`${kind}:${r.id}`, r.version);
  }

  /** Updates every copy of a request's card, in version order (an older state never overwrites a newer one). */
  private updateCards(kind: CardKind, r: AccessRequest, m: SlackMessage): Promise<void> {
    const key = `${kind}:${r.id}`;
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      if ((this.rendered.get(key) ?? 0) > r.version) return;
      this.rendered.set(key, r.version);
      const refs = await this.deps.redis.smembers(this.cardKey(kind, r.id));
      await Promise.all(
        refs.map(async (ref) => {
          const [channel, ts] = ref.split(' ');
          try {
            await this.client.chat.update({ channel: channel!, ts: ts!, text: m.text, blocks: m.blocks });
          } catch (err) {
            this.apiFailed(err);
            this.deps.log.warn('slack: card not updated', { request: r.id, channel, err });
          }
        }),
      );
    });
    const settled = next.catch(() => {});
    this.chains.set(key, settled);
    void settled.then(() => {
      if (this.chains.get(key) === settled) {
        this.chains.delete(key);
        if (FINAL_STATUSES.includes(r.status)) this.rendered.delete(key);
      }
    });
    return next;
  }
}

function workspaceOf(auth: { team_id?: string; enterprise_id?: string; is_enterprise_install?: boolean }): SlackWorkspace | undefined {
  if (!auth.team_id && !auth.enterprise_id) return undefined;
  return { teamId: auth.team_id ?? '', ...(auth.enterprise_id ? { enterpriseId: auth.enterprise_id } : {}), enterpriseInstall: auth.is_enterprise_install === true };
}

function slackError(err: unknown): string | undefined {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}
