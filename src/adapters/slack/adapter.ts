// Slack, on @slack/bolt: the `/jit` slash command, Approve / Deny buttons (Deny asks for a reason
// in a modal), Revoke and Extend buttons; as a ChatPlatform, posts (chat.postMessage), updates
// (chat.update) and DMs in Block Kit, for the shared notifier. Bolt's HTTPReceiver checks every request's v0 signature
// and timestamp; it is mounted on the project's one HTTP server at POST /slack/events. Every
// request must also come from the workspace (or Enterprise Grid org) the bot token belongs to
// (auth.test), else it is refused before any listener runs. The listeners are in listeners.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, HTTPReceiver, webApi } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { ChatMessage, Destination, HomeViewsPort } from '../../app/chat/platform.js';
import type { OpsMetrics } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import { isJitError } from '../../core/errors.js';
import type { PolicyBook } from '../../core/policy.js';
import type { AuditEvent, PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { CHAT_MAX_BODY, readRaw, type Route } from '../../server.js';
import { HomeViewers } from '../chat/home-viewers.js';
import { counted, type ChatAdapter } from '../chat/platforms.js';
import { auditLine, renderMessage, replyMessage, type SlackMessage } from './blocks.js';
import { PERMANENT, boltLogger, slackError, usersApiOf, webClientOptions } from './client.js';
import { SlackDirectory, UnresolvedUserError, type SlackUsersApi } from './directory.js';
import { SlackForms } from './forms.js';
import { fail, registerListeners } from './listeners.js';
import { SlackUserGroups } from './usergroups.js';
import { foreignWorkspace, workspaceOf, type SlackWorkspace } from './workspace.js';

export { foreignWorkspace, type SlackWorkspace };

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

const SEEN_TTL_S = 3600;
/** How long an opened App Home is kept current after its last opening. */
const HOME_SEEN_TTL_MS = 30 * 86_400_000;

export class SlackAdapter implements ChatAdapter {
  readonly name = 'slack';
  readonly webhook = { path: SLACK_PATH, maxBody: CHAT_MAX_BODY };
  readonly auditFeed: { channel?: string; intervalMs: number };
  readonly app: App;
  readonly client: Client;
  private readonly receiver: HTTPReceiver;
  private readonly directory: SlackDirectory;
  private readonly usersApi: SlackUsersApi;
  private service: JitService | undefined;
  private views: ChatViews | undefined;
  private readonly forms: SlackForms;
  private readonly homeViewers: HomeViewers;

  private constructor(
    private readonly deps: SlackDeps,
    client: Client,
    private readonly ids: { botId?: string; botUserId?: string },
    private home: SlackWorkspace | undefined,
  ) {
    const { settings, log } = deps;
    this.client = client;
    this.auditFeed = { ...(settings.auditChannel ? { channel: settings.auditChannel } : {}), intervalMs: settings.auditIntervalMs };
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
    this.usersApi = usersApiOf(this.client);
    this.directory = new SlackDirectory(
      this.usersApi,
      () => this.book(),
      settings.userCacheTtlMs,
    );
    // The Web API client waits out 429s itself (Retry-After); count the time.
    for (const c of [this.client, this.app.client]) c.on(webApi.WebClientEvent.RATE_LIMITED, (seconds: number) => deps.metrics?.chatRateLimited('slack', seconds));
    this.homeViewers = new HomeViewers(deps.redis, `${deps.prefix}:slack:homes`, { ttlMs: HOME_SEEN_TTL_MS });
    this.forms = new SlackForms({
      app: this.app,
      client: this.client,
      log,
      views: () => this.views,
      resolve: (user) => this.directory.resolve(user),
      userOf: (principal) => this.recipient(principal),
      errorText: (err) => this.errorMessage(err).text,
      call: (p) => this.call(p),
      homes: this.homeViewers,
    });
    registerListeners({
      app: this.app,
      client: this.client,
      log,
      directory: this.directory,
      forms: this.forms,
      svc: () => this.svc(),
      installed: () => this.installed(),
      firstTime: (kind, key) => this.firstTime(kind, key),
      respondSafely: (send, m) => this.respondSafely(send, m),
      errorMessage: (err) => this.errorMessage(err),
      call: (p) => this.call(p),
    });
    this.forms.register();
  }

  /** Slack user groups as a directory of policy groups (`usergroups.users.list`, scope usergroups:read). */
  userGroups(): SlackUserGroups {
    return new SlackUserGroups(
      {
        list: async (usergroup) => {
          try {
            return (await this.client.usergroups.users.list({ usergroup })).users ?? [];
          } catch (err) {
            const code = slackError(err);
            if (code === 'missing_scope') throw new Error('Slack refused usergroups.users.list (missing_scope): add the usergroups:read scope to the Slack app and reinstall it');
            throw new Error(`Slack usergroups.users.list failed: ${code ?? (err instanceof Error ? err.message : String(err))}`);
          }
        },
        info: (user) => this.usersApi.info(user),
      },
      this.deps.settings.userCacheTtlMs,
    );
  }

  /** `ok` once auth.test succeeded (the bot token works and its ids are known). */
  health(): string {
    return this.ids.botUserId ? 'ok' : 'not connected (auth.test failed; calls are retried)';
  }

  private apiFailed(err: unknown): void {
    this.deps.metrics?.chatApiError('slack', this.failure(err).code);
  }

  failure(err: unknown): { code: string; permanent: boolean } {
    const code = slackError(err) ?? (err as { code?: string } | undefined)?.code ?? 'error';
    return { code, permanent: PERMANENT.has(code) };
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

  bind(service: JitService, views?: ChatViews): void {
    this.service = service;
    this.views = views;
  }

  /** The App Homes: who opened theirs in the last 30 days, and one drawn again (the notifier calls it on every change that concerns them). */
  readonly homes: HomeViewsPort = {
    viewers: () => (this.forms.enabled ? this.homeViewers.viewers() : Promise.resolve(new Set<PrincipalId>())),
    refresh: (principal) => this.forms.refreshHome(principal),
  };

  /** The route for the project's HTTP server. */
  readonly route: Route = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (url.pathname !== this.webhook.path) return false;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST only');
      return true;
    }
    // Bolt 4 buffers the whole body before it checks the signature. The body is read here instead,
    // at most webhook.maxBody (CHAT_MAX_BODY) bytes (413 beyond, before the signature check), and handed to Bolt as
    // already buffered (`rawBody`, which its receiver uses as is).
    const rawBody = await readRaw(req, this.webhook.maxBody);
    this.receiver.requestListener(Object.assign(req, { rawBody }), res);
    return true;
  };

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

  private errorMessage(err: unknown): SlackMessage {
    if (isJitError(err)) return replyMessage({ kind: 'rejected', code: err.code, message: err.message, ...(err.example ? { example: err.example } : {}) });
    if (err instanceof UnresolvedUserError) return fail(err.message);
    this.deps.log.error('slack: command failed', { err });
    return fail('something went wrong on our side; nothing was changed. Try again in a minute');
  }

  // ------------------------------------------------------------------ outgoing (ChatPlatform)

  /** A Web API call, its failure counted. */
  private call<T>(p: Promise<T>): Promise<T> {
    return counted(p, (err) => this.apiFailed(err));
  }

  recipient(principal: PrincipalId): Promise<string | null> {
    return this.call(this.directory.userOf(principal));
  }

  async post(to: Destination, m: ChatMessage): Promise<string> {
    const { text, blocks } = renderMessage(m);
    const res = await this.call(this.client.chat.postMessage({ channel: to.id, text, ...(blocks ? { blocks } : {}), unfurl_links: false, unfurl_media: false }));
    return res.channel && res.ts ? `${res.channel} ${res.ts}` : '';
  }

  async update(ref: string, m: ChatMessage): Promise<void> {
    const [channel = '', ts = ''] = ref.split(' ');
    const { text, blocks } = renderMessage(m);
    await this.call(this.client.chat.update({ channel, ts, text, ...(blocks ? { blocks } : {}) }));
  }

  auditLine(event: AuditEvent): string {
    return auditLine(event);
  }

  async postText(channel: string, text: string): Promise<void> {
    await this.call(this.client.chat.postMessage({ channel, text, mrkdwn: true, unfurl_links: false, unfurl_media: false }));
  }
}

