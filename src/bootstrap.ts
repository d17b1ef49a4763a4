// Wires configuration, Redis, the store, the audit log, the scheduler and worker, the network
// gate and the HTTP server. `startJit` is what `npm start` runs and what integration tests start.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { ChatNotifier } from './app/chat/notifier.js';
import type { ChatPlatform } from './app/chat/platform.js';
import { randomIds } from './app/ids.js';
import { systemClock, type Clock, type GroupDirectory, type IdSource, type NetworkGate, type Notifier } from './app/ports.js';
import { DirectoryGroups } from './app/directory-groups.js';
import { directorySources } from './core/directory.js';
import { JitService } from './app/service.js';
import { ChatViews } from './app/views.js';
import { FanoutNotifier, LocalFeed } from './adapters/local/feed.js';
import { BullScheduler, BullWorker } from './adapters/queue/bullmq.js';
import { RedisAuditLog } from './adapters/redis/audit.js';
import { checkEvictionPolicy, checkTimerResolution, openRedis } from './adapters/redis/connection.js';
import { ensureRedis } from './adapters/redis/embedded.js';
import { RedisRequestStore } from './adapters/redis/store.js';
import { RedisRateLimiter } from './adapters/redis/ratelimit.js';
import { NETWORK_GATES } from './adapters/network.js';
import { createOnCall } from './adapters/pagerduty/config.js';
import { PrometheusMetrics } from './adapters/metrics/prometheus.js';
import { CHAT_PLATFORM_CONFIGS, CHAT_PLATFORMS, type ChatAdapter } from './adapters/chat/platforms.js';
import { RedisMessageRefs } from './adapters/redis/messages.js';
import type { SlackAdapter } from './adapters/slack/adapter.js';
import type { TeamsAdapter, TeamsAuthOverrides } from './adapters/teams/adapter.js';
import { ConfigError, loadConfig, localChannelExposure, type Config } from './config/env.js';
import { loadPolicyFile } from './config/policy-file.js';
import { createLogger, type Logger } from './log.js';
import { DEFAULT_PRIVACY_TEXT, DEFAULT_TERMS_TEXT, createHttpServer, legalPages, type HttpLimits } from './server.js';
import { LocalAuth } from './adapters/local/auth.js';
import { createApi } from './adapters/http/api.js';

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  clock?: Clock;
  ids?: IdSource;
  /** Replace the network gate (tests inject faults). */
  gate?: NetworkGate;
  notifiers?: Notifier[];
  /** More chat platforms beside the configured ones (tests bring one of their own); the policy file may name them. */
  chatPlatforms?: ChatPlatform[];
  /** Bot Framework endpoints / credentials other than the public cloud's (tests: a local OpenID + JWKS fake). */
  teamsAuth?: TeamsAuthOverrides;
  /** The HTTP server's timeouts and connection cap (tests shorten them). */
  httpLimits?: Partial<HttpLimits>;
  /** Directories for directory-backed groups instead of the configured ones (tests: Graph with a static token). */
  groupDirectories?: GroupDirectory[];
}

export interface RunningJit {
  config: Config;
  url: string;
  service: JitService;
  gate: NetworkGate;
  feed: LocalFeed;
  /** The request form and home views every chat platform (and the console) renders. */
  views: ChatViews;
  /** Resolves once the home views being redrawn in the background (after notifications) are done (tests). */
  homesSettled(): Promise<void>;
  /** Present when SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN are set. */
  slack?: SlackAdapter;
  /** Present when MICROSOFT_APP_ID is set (or TEAMS_ALLOW_UNAUTHENTICATED for local tests). */
  teams?: TeamsAdapter;
  scheduler: BullScheduler;
  redis: Redis;
  /** The local channel's secret of this run (also in `<JIT_DATA_DIR>/local-token`); absent when the local channel is off. */
  localToken?: string;
  /** A fresh one-time login link for the console; absent when the local channel is off. */
  loginLink?: () => string;
  /** Stops taking requests, drains the worker, closes connections (and the embedded Redis). */
  stop(): Promise<void>;
  /** Stops only the worker (tests simulate a crash / restart of it). */
  stopWorker(): Promise<void>;
  startWorker(): void;
}

export async function startJit(opts: StartOptions = {}): Promise<RunningJit> {
  const config = loadConfig(opts.env ?? process.env);
  const log = opts.log ?? createLogger(config.LOG_LEVEL);
  const book = await loadPolicyFile(config.JIT_POLICY_FILE, [...CHAT_PLATFORMS, ...(opts.chatPlatforms ?? []).map((p) => p.name)]);
  const strangers = config.JIT_API_TOKENS.filter((t) => !Object.hasOwn(book.principals, t.principal)).map((t) => t.principal);
  if (strangers.length > 0) throw new ConfigError([`JIT_API_TOKENS: ${strangers.join(', ')} ${strangers.length === 1 ? 'is' : 'are'} not a principal of the policy file`]);
  const directoryKinds = new Set(directorySources(book).map((s) => s.kind));
  if (directoryKinds.has('slack') && !(config.SLACK_SIGNING_SECRET && config.SLACK_BOT_TOKEN) && !opts.groupDirectories?.some((d) => d.kind === 'slack')) {
    throw new ConfigError([`${config.JIT_POLICY_FILE}: a group is backed by a Slack user group (slack: S…) but Slack is not configured (SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN)`]);
  }

  const redisInfo = await ensureRedis({
    ...(config.REDIS_URL ? { url: config.REDIS_URL } : {}),
    dataDir: config.JIT_DATA_DIR,
    log: (m) => log.info(m),
  });

  // At start an unreachable Redis is an error within ~10 s; later the connection reconnects on its
  // own (/readyz says redis: down meanwhile) and its errors are logged once per kind of error.
  let lastRedisError = '';
  const redis = await openRedis(redisInfo.url, {
    label: config.REDIS_URL ? 'REDIS_URL' : 'the private Redis',
    onError: (err) => {
      if (err.message === lastRedisError) return;
      lastRedisError = err.message;
      log.warn('redis: connection error; reconnecting', { err });
    },
  }).catch(async (err: unknown) => {
    await redisInfo.stop();
    throw err;
  });
  redis.on('ready', () => (lastRedisError = ''));
  const eviction = await checkEvictionPolicy(redis);
  if (eviction) log.warn(eviction);
  const hzNote = await checkTimerResolution(redis);
  if (hzNote) log.info(hzNote);

  const prefix = config.JIT_KEY_PREFIX;
  const store = new RedisRequestStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  // Data of an older version is converted once, here, not on a user's read: requests and their
  // indexes (store.ts), the audit's per-target index (audit.ts).
  await store.prepare();
  await audit.prepare();
  const scheduler = new BullScheduler({ connection: redis, prefix: `${prefix}-bull` });
  const metrics = new PrometheusMetrics({
    countByStatus: (status) => store.countByStatus(status),
    queueCounts: () => scheduler.counts(),
    gateStats: () => {
      // The Azure gate keeps ARM answer tallies (duck-typed: its SDK loads only when configured).
      const g = rawGate as Partial<Pick<import('./adapters/azure/gate.js').AzureGate, 'armAnswers' | 'stats'>>;
      return g.armAnswers && g.stats ? { answers: g.armAnswers(), retries: g.stats.retries } : undefined;
    },
  });
  const rawGate = opts.gate ?? (await NETWORK_GATES[config.JIT_NETWORK](config, { redis, prefix, targets: () => Object.values(book.targets), log }));
  // Every write timed and its failures counted (jit_network_write_*).
  const gate = metrics.meter(rawGate);
  const feed = new LocalFeed();
  // Each configured chat platform, built by its own factory (src/adapters/<platform>/config.ts).
  const chats: ChatAdapter[] = [];
  try {
    for (const p of CHAT_PLATFORM_CONFIGS) {
      if (p.configured(config)) chats.push(await p.create(config, { redis, prefix, log, metrics, ...(opts.teamsAuth ? { teamsAuth: opts.teamsAuth } : {}) }));
    }
  } catch (err) {
    await scheduler.close();
    redis.disconnect();
    await redisInfo.stop();
    throw err;
  }
  const slack = chats.find((c): c is SlackAdapter => c.name === 'slack');
  const teams = chats.find((c): c is TeamsAdapter => c.name === 'teams');
  const platforms: ChatPlatform[] = [...chats, ...(opts.chatPlatforms ?? [])];
  // One notifier decides, for every chat platform, what to post and update where.
  const chat = new ChatNotifier({ platforms, refs: new RedisMessageRefs(redis, prefix), log });
  const notifier = new FanoutNotifier([feed, metrics, chat, ...(opts.notifiers ?? [])], (err) => log.warn('notifier failed', { err }));

  // Groups backed by Entra ID (Microsoft Graph) or Slack user groups: read at start and every third of JIT_DIRECTORY_TTL.
  let directory: DirectoryGroups | undefined;
  if (directoryKinds.size > 0) {
    const dirs: GroupDirectory[] = [...(opts.groupDirectories ?? [])];
    if (directoryKinds.has('entra') && !dirs.some((d) => d.kind === 'entra')) dirs.push(await (await import('./adapters/graph/groups.js')).graphDirectoryFromEnv(config));
    if (directoryKinds.has('slack') && !dirs.some((d) => d.kind === 'slack') && slack) dirs.push(slack.userGroups());
    directory = new DirectoryGroups({ directories: dirs, ttlMs: config.JIT_DIRECTORY_TTL, clock: opts.clock ?? systemClock, log: (msg, err) => log.warn(msg, { err }) });
  }

  const onCall = createOnCall(config);
  const service = new JitService({
    ...(directory ? { directory } : {}),
    ...(onCall ? { onCall } : {}),
    store,
    audit,
    scheduler,
    gate,
    notifier,
    clock: opts.clock ?? systemClock,
    ids: opts.ids ?? randomIds((n) => randomBytes(n)),
    book,
    rateLimiter: new RedisRateLimiter(redis, prefix),
    settings: {
      requestRate: config.JIT_REQUEST_RATE,
      readRate: config.JIT_READ_RATE,
      auditRate: config.JIT_AUDIT_RATE,
      maxActivePerPrincipal: config.JIT_MAX_ACTIVE_PER_PRINCIPAL,
      maxActivePerTarget: config.JIT_MAX_ACTIVE_PER_TARGET,
      minDurationMs: config.JIT_MIN_DURATION,
      sourceLinkTtlMs: config.JIT_SOURCE_LINK_TTL,
      closeLeadMaxMs: config.JIT_CLOSE_LEAD_MAX,
      closeLeadMarginMs: config.JIT_CLOSE_LEAD_MARGIN,
      ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
    },
    log: (msg, err) => log.warn(msg, { err }),
  });
  chat.bind(service);
  // Targets the policy marks `enforce: true` get the bot's Deny rules (idempotent: nothing is written when they exist).
  for (const t of Object.values(book.targets).filter((x) => x.enforce)) {
    await service.enforce('system', t.name).then(
      (r) => log.info('enforced', { target: t.name, result: r.kind === 'info' ? r.message : r.kind }),
      (err: unknown) => log.error('could not enforce the deny rules of a target', { target: t.name, err }),
    );
  }
  // Targets the network side defines (Defender for Cloud's JIT policies), read now and on every sweep tick.
  await service.refreshNetworkPolicies();
  // A directory that cannot be read does not stop start-up: its groups hold no rights and /readyz says so.
  await service.refreshDirectoryGroups();
  let refreshingDirectory = false;
  const directoryTimer = directory
    ? setInterval(() => {
        if (refreshingDirectory) return;
        refreshingDirectory = true;
        void service.refreshDirectoryGroups().finally(() => (refreshingDirectory = false));
      }, Math.max(1000, Math.floor(config.JIT_DIRECTORY_TTL / 3)))
    : undefined;
  directoryTimer?.unref();
  const views = new ChatViews({ service, store, clock: opts.clock ?? systemClock });
  for (const c of chats) c.bind(service, views);

  let worker: BullWorker | null = null;
  const startWorker = () => {
    if (worker) return;
    worker = new BullWorker({
      connection: redis,
      prefix: `${prefix}-bull`,
      handlers: service,
      log: (msg, err) => log.warn(msg, { err }),
    });
  };
  const stopWorker = async () => {
    const w = worker;
    worker = null;
    await w?.close();
  };
  if (config.JIT_WORKER) startWorker();

  // The local channel acts as anyone: it needs the secret of this run (token file, login link).
  const local = config.JIT_LOCAL_CHANNEL ? LocalAuth.create(config.JIT_DATA_DIR) : undefined;
  const exposed = localChannelExposure(config);
  if (local && exposed.length > 0) {
    log.warn(`JIT_LOCAL_CHANNEL=true beside ${exposed.join(', ')}: the local channel (console, CLI) acts as any principal for whoever has the token in ${local.file}; keep it off where this server is reachable by others`);
  }

  let draining = false;
  // Not ready until start-up has finished: the local secret is on disk and the first sweep ran.
  let starting = true;
  let url = '';
  let lastSweep: { ok: boolean; error?: string } = { ok: true };
  const inFlight = new Set<Promise<void>>();
  const server = createHttpServer({
    service,
    gate,
    audit,
    log,
    network: config.JIT_NETWORK,
    ...(local ? { local } : {}),
    baseUrl: () => url,
    ...(opts.httpLimits ? { limits: opts.httpLimits } : {}),
    trustedProxies: config.JIT_TRUSTED_PROXIES,
    bodyLimits: new Map(chats.map((c) => [c.webhook.path, c.webhook.maxBody])),
    health: {
      // Not connected: down at once (a PING would wait in the offline queue until Redis is back).
      redis: async () => redis.status === 'ready' && (await Promise.race([redis.ping(), new Promise((r) => setTimeout(r, 2000).unref())])) === 'PONG',
      worker: () => (!config.JIT_WORKER ? 'disabled' : worker?.running() ? 'running' : 'stopped'),
      draining: () => draining,
      starting: () => starting,
      adapters: () => ({
        network: !lastSweep.ok ? `last sweep failed: ${lastSweep.error ?? 'unknown'}` : service.networkPoliciesProblem() ?? 'ok',
        ...(directory ? { directory: service.directoryProblem() ?? 'ok' } : {}),
        ...Object.fromEntries(platforms.map((p) => [p.name, p.health()])),
      }),
    },
    track: (p) => {
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  }, [
    metrics.route(),
    legalPages({ privacy: config.JIT_PRIVACY_TEXT ?? DEFAULT_PRIVACY_TEXT, terms: config.JIT_TERMS_TEXT ?? DEFAULT_TERMS_TEXT }),
    createApi({ service, tokens: config.JIT_API_TOKENS, log, ...(local ? { local } : {}) }),
    ...chats.map((c) => c.route),
    // The web console acts as any principal: only with the local channel (the server checks its secret).
    ...(local ? [await (await import('./adapters/console/console.js')).createConsole({ service, gate, audit, feed, log, views })] : []),
  ]);
  server.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  url = `http://${host}:${addr.port}`;
  await local?.publish();

  // Second line of "no port outlives its grant": sweep the network for rules past expiry.
  // One replica sweeps at a time: the sweep needs a lease in Redis that lasts a little less than
  // one interval, so each interval sees one sweep whichever replica's timer fires first.
  const leaseKey = `${prefix}:reconciler:lease`;
  const replicaId = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const leaseMs = Math.max(100, Math.floor(config.JIT_RECONCILE_INTERVAL * 0.9));
  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return; // a slow sweep (ARM throttling) is not overlapped by the next tick
    await service.refreshNetworkPolicies(); // every replica keeps its own copy of the network's targets
    const got = await redis.set(leaseKey, replicaId, 'PX', leaseMs, 'NX').catch(() => null);
    if (got !== 'OK') return;
    sweeping = true;
    try {
      // Revocations due before the next sweep (plus the longest lead) are re-planned by this one.
      const n = await service.reconcile(config.JIT_RECONCILE_INTERVAL + config.JIT_CLOSE_LEAD_MAX);
      lastSweep = { ok: true };
      metrics.sweep(true, n);
      if (n > 0) log.warn('reconciler closed rules that outlived their grant', { rules: n });
    } catch (err) {
      lastSweep = { ok: false, error: err instanceof Error ? err.message : String(err) };
      metrics.sweep(false, 0);
      log.error('reconcile failed', { err });
    } finally {
      sweeping = false;
    }
  };
  await sweep();
  const timer = setInterval(() => void sweep(), config.JIT_RECONCILE_INTERVAL);
  timer.unref();

  log.info('jit-bot listening', { url, network: config.JIT_NETWORK, policy: config.JIT_POLICY_FILE, localChannel: config.JIT_LOCAL_CHANNEL, ...Object.fromEntries(CHAT_PLATFORM_CONFIGS.map((p) => [p.name, p.mode(config)])) });

  starting = false;
  let stopped = false;
  return {
    config,
    url,
    service,
    views,
    homesSettled: () => chat.homesSettled(),
    gate,
    feed,
    ...(slack ? { slack } : {}),
    ...(teams ? { teams } : {}),
    scheduler,
    redis,
    ...(local ? { localToken: local.token, loginLink: () => local.loginLink(url) } : {}),
    startWorker,
    stopWorker,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Drain: /readyz says 503 at once (load balancers stop sending), no new connections, the
      // requests in flight finish (their network writes included, up to 25 s), then the worker
      // finishes its running jobs and closes.
      draining = true;
      clearInterval(timer);
      clearInterval(directoryTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 25_000).unref())]);
      server.closeAllConnections();
      await closed;
      await stopWorker();
      await chat.close(2000);
      await scheduler.close();
      await redis.quit().catch(() => redis.disconnect());
      await redisInfo.stop();
      await local?.remove();
    },
  };
}
