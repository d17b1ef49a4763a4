// Configuration from environment variables, validated at start. A bad or missing value gets a
// message that names the variable.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { parseSource } from '../core/source.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const durationVar = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write 5m, 60s or PT5M` });
        return z.NEVER;
      }
    });

/** A duration (also in ms: `500ms`) or `0` (off), at most `maxMs`: how early a revocation may start, and its margin. */
const leadVar = (fallback: string, maxMs: number, max: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      if (/^0+[a-z]*$/i.test(v.trim())) return 0;
      const millis = /^\s*(\d{1,6})\s*ms\s*$/i.exec(v);
      let ms: number;
      try {
        ms = millis ? Number(millis[1]) : parseDuration(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write 500ms, 30s, 1m or PT30S (0: off)` });
        return z.NEVER;
      }
      if (ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `at most ${max}` });
        return z.NEVER;
      }
      return ms;
    });

/** An NSG priority range `lo-hi` within Azure's 100-4096. */
const priorityRange = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^(\d{3,4})-(\d{3,4})$/.exec(v);
      const range = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : null;
      if (!range || range[0] < 100 || range[1] > 4096 || range[0] > range[1]) {
        ctx.addIssue({ code: 'custom', message: `must be a range within 100-4096, e.g. ${fallback}` });
        return z.NEVER;
      }
      return range;
    });

/** `<count>/<duration>` such as `30/1m`, or `off` (no limit). */
const rate = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      if (v === 'off' || v === '0') return { count: 0, windowMs: 60_000 };
      const m = /^(\d{1,6})\/(.+)$/.exec(v);
      let windowMs = NaN;
      try {
        windowMs = m ? parseDuration(m[2]!) : NaN;
      } catch {
        /* reported below */
      }
      if (!m || Number.isNaN(windowMs) || Number(m[1]) < 1) {
        ctx.addIssue({ code: 'custom', message: 'must be <count>/<duration> such as 30/1m, or off' });
        return z.NEVER;
      }
      return { count: Number(m[1]), windowMs };
    });

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? fallback : v === 'true' || v === '1' || v === 'yes'));

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z
    .string()
    .default('127.0.0.1')
    .refine((h) => isIP(h) !== 0 || h === 'localhost', { message: 'must be an IP address to bind to (127.0.0.1, ::1, 0.0.0.0)' }),
  REDIS_URL: z
    .string()
    .optional()
    .refine((u) => u === undefined || /^(rediss?:\/\/|unix:\/\/)/.test(u), { message: 'must start with redis://, rediss:// or unix://' }),
  JIT_POLICY_FILE: z.string().default('config/policy.example.yaml'),
  JIT_NETWORK: z.enum(['simulated', 'azure'], { message: 'must be "simulated" or "azure"' }).default('simulated'),
  JIT_DATA_DIR: z.string().default('data'),
  JIT_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('jit'),
  JIT_MIN_DURATION: durationVar('PT5M'),
  JIT_SOURCE_LINK_TTL: durationVar('PT5M'),
  JIT_RECONCILE_INTERVAL: durationVar('60s'),
  /**
   * Early close: a grant's revocation starts before its expiry by the time the network is measured
   * to take to close its rules (Azure: recent writes per NSG and firewall policy) plus
   * JIT_CLOSE_LEAD_MARGIN, so the rules are gone BY the expiry; never more than JIT_CLOSE_LEAD_MAX
   * (nor half the grant) early. 0: revocations start at the expiry.
   */
  JIT_CLOSE_LEAD_MAX: leadVar('30s', 10 * 60_000, '10m: a grant closed earlier than that is a shorter grant, not an early close'),
  JIT_CLOSE_LEAD_MARGIN: leadVar('1s', 60_000, '1m (it covers the revocation job starting late and its own commit, not ARM: ARM is measured)'),
  PUBLIC_URL: z.url({ message: 'must be an absolute http(s) URL people can open, e.g. https://jit.contoso.com' }).optional(),
  /** Texts of the /privacy and /terms pages the Teams manifest links to (paragraphs separated by a blank line). */
  JIT_PRIVACY_TEXT: z.string().max(20_000).optional(),
  JIT_TERMS_TEXT: z.string().max(20_000).optional(),
  JIT_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: string[] = [];
      for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        try {
          out.push(parseSource(part));
        } catch {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not an address or CIDR` });
        }
      }
      return out;
    }),
  /**
   * The local chat channel (CLI / console) acts as any principal, for whoever holds the secret of
   * the run: loopback only; on by default only when no chat platform and no PUBLIC_URL is set.
   */
  JIT_LOCAL_CHANNEL: bool(true),
  JIT_WORKER: bool(true),
  /** Abuse limits: requests per principal per window (`30/1m`; `off`), and caps on requests in flight. */
  JIT_REQUEST_RATE: rate('30/1m'),
  /** Reads per principal per window: list, status, vms, card refreshes, GET /api/v1/requests(/id), /targets. */
  JIT_READ_RATE: rate('120/1m'),
  /** Audit reads per principal per window: `audit`, /api/v1/audit(.csv), the console's CSV download. */
  JIT_AUDIT_RATE: rate('20/1m'),
  JIT_MAX_ACTIVE_PER_PRINCIPAL: z.coerce.number().int().min(0).max(100_000).default(10),
  JIT_MAX_ACTIVE_PER_TARGET: z.coerce.number().int().min(0).max(1_000_000).default(100),
  /**
   * REST API tokens: `principal=sha256:<hex>` entries, comma-separated. Only the SHA-256 of each
   * token is configured; `npm run api-token -- <principal>` makes one.
   */
  JIT_API_TOKENS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: Array<{ principal: string; sha256: string }> = [];
      for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        const m = /^([^=\s]+@[^=\s]+)=sha256:([0-9a-f]{64})$/i.exec(part);
        if (!m) {
          ctx.addIssue({ code: 'custom', message: `"${part.replace(/=.*/, '=…')}" must be principal=sha256:<64 hex digits> (npm run api-token -- <principal>)` });
          continue;
        }
        out.push({ principal: m[1]!.toLowerCase(), sha256: m[2]!.toLowerCase() });
      }
      return out;
    }),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  PAGERDUTY_API_TOKEN: z.string().min(1).optional(),
  SLACK_SIGNING_SECRET: z.string().min(8, 'looks too short for a Slack signing secret').optional(),
  SLACK_BOT_TOKEN: z.string().regex(/^xox[bp]-/, 'must be a bot token (xoxb-…) from the app\'s OAuth & Permissions page').optional(),
  SLACK_API_URL: z.url({ message: 'must be the Web API base URL, e.g. https://slack.com/api/' }).optional(),
  SLACK_AUDIT_CHANNEL: z.string().regex(/^[CGD][A-Z0-9]{2,}$/, 'must be a channel id such as C0123ABCD (not a #name)').optional(),
  SLACK_AUDIT_INTERVAL: durationVar('1s'),
  SLACK_USER_CACHE_TTL: durationVar('10m'),
  MICROSOFT_APP_ID: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be the bot\'s Microsoft App ID (a GUID)').optional(),
  MICROSOFT_APP_PASSWORD: z.string().min(1).optional(),
  // Azure Bot creates only SingleTenant and UserAssignedMSI bots since 31 July 2025; MultiTenant
  // stays for bots registered before.
  MICROSOFT_APP_TYPE: z
    .enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI'], { message: 'must be SingleTenant (the default), UserAssignedMSI, or MultiTenant (only for bots registered as multi-tenant before 31 July 2025)' })
    .default('SingleTenant'),
  MICROSOFT_APP_TENANT_ID: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a tenant id (a GUID)').optional(),
  /**
   * Tenant ids whose Teams users the bot answers, comma-separated. Default: MICROSOFT_APP_TENANT_ID
   * (the bot's own tenant); a MultiTenant bot without either is refused at start.
   */
  TEAMS_ALLOWED_TENANTS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: string[] = [];
      for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(part)) out.push(part.toLowerCase());
        else ctx.addIssue({ code: 'custom', message: `"${part}" is not a tenant id (a GUID)` });
      }
      return out;
    }),
  TEAMS_ALLOW_UNAUTHENTICATED: bool(false),
  TEAMS_SERVICE_URL: z.url({ message: 'must be the Bot Connector URL, e.g. https://smba.trafficmanager.net/teams/' }).default('https://smba.trafficmanager.net/teams/'),
  TEAMS_AUDIT_CHANNEL: z.string().min(1).optional(),
  TEAMS_AUDIT_INTERVAL: durationVar('1s'),
  AZURE_SUBSCRIPTION_ID: z.string().regex(/^[0-9a-zA-Z-]+(,[0-9a-zA-Z-]+)*$/, 'must be a subscription id (or several, comma-separated)').optional(),
  AZURE_ARM_ENDPOINT: z.url({ message: 'must be the Resource Manager URL, e.g. https://management.azure.com or https://management.usgovcloudapi.net' }).default('https://management.azure.com'),
  AZURE_AUTHORITY_HOST: z.url({ message: 'must be the Entra ID authority, e.g. https://login.microsoftonline.us' }).optional(),
  AZURE_ARM_CA_FILE: z.string().min(1).optional(),
  /** A static bearer token instead of DefaultAzureCredential (the ARM emulator, short-lived CI jobs). */
  AZURE_ACCESS_TOKEN: z.string().min(1).optional(),
  JIT_NSG_PRIORITY_RANGE: priorityRange('100-199'),
  JIT_NSG_DENY_PRIORITY_RANGE: priorityRange('4000-4096'),
  AZURE_WRITE_DEADLINE: durationVar('60s'),
  AZURE_REQUEST_TIMEOUT: durationVar('20s'),
  AZURE_POLL_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  AZURE_FIREWALL_WRITE_DEADLINE: durationVar('30m'),
  AZURE_SCOPE_SWEEP_INTERVAL: z.union([z.literal('0').transform(() => 0), durationVar('5m')]).default(5 * 60_000),
  AZURE_READ_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
  PAGERDUTY_API_URL: z.url({ message: 'must be a URL, e.g. https://api.pagerduty.com' }).optional(),
});

export type Config = z.infer<typeof schema>;

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

const isLoopbackUrl = (u: string): boolean => {
  const host = new URL(u).hostname.replace(/^\[|\]$/g, '');
  return isLoopback(host);
};

/** What makes this server reachable by others (a chat platform, a public URL): the local channel is off by default beside any of them. */
export function localChannelExposure(cfg: Config): string[] {
  return [
    ...(cfg.SLACK_SIGNING_SECRET ? ['Slack (SLACK_SIGNING_SECRET)'] : []),
    ...(cfg.MICROSOFT_APP_ID ? ['Teams (MICROSOFT_APP_ID)'] : []),
    ...(cfg.TEAMS_ALLOW_UNAUTHENTICATED ? ['TEAMS_ALLOW_UNAUTHENTICATED'] : []),
    ...(cfg.PUBLIC_URL ? ['PUBLIC_URL'] : []),
  ];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '?');
        const got = input[name];
        return `${name}: ${i.message}${got !== undefined && name !== 'REDIS_URL' ? ` (got "${got}")` : ''}`;
      }),
    );
  }
  const cfg = parsed.data;
  const problems: string[] = [];
  if (Boolean(cfg.SLACK_SIGNING_SECRET) !== Boolean(cfg.SLACK_BOT_TOKEN)) {
    const missing = cfg.SLACK_SIGNING_SECRET ? 'SLACK_BOT_TOKEN' : 'SLACK_SIGNING_SECRET';
    problems.push(`${missing}: missing; Slack needs both SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or neither, to run without Slack)`);
  }
  if (cfg.MICROSOFT_APP_ID) {
    if (cfg.TEAMS_ALLOW_UNAUTHENTICATED) problems.push('TEAMS_ALLOW_UNAUTHENTICATED: only for local testing without MICROSOFT_APP_ID; with an app id every activity is authenticated');
    if (cfg.MICROSOFT_APP_TYPE !== 'UserAssignedMSI' && !cfg.MICROSOFT_APP_PASSWORD) problems.push(`MICROSOFT_APP_PASSWORD: missing; a ${cfg.MICROSOFT_APP_TYPE} bot needs its client secret`);
    if (cfg.MICROSOFT_APP_TYPE !== 'MultiTenant' && !cfg.MICROSOFT_APP_TENANT_ID) {
      problems.push(
        `MICROSOFT_APP_TENANT_ID: missing; a ${cfg.MICROSOFT_APP_TYPE} bot${cfg.MICROSOFT_APP_TYPE === 'SingleTenant' ? ' (MICROSOFT_APP_TYPE\'s default, as Azure Bot creates new bots)' : ''} needs its tenant id` +
          ' (a bot registered as multi-tenant before 31 July 2025: MICROSOFT_APP_TYPE=MultiTenant)',
      );
    } else if (cfg.TEAMS_ALLOWED_TENANTS.length === 0 && !cfg.MICROSOFT_APP_TENANT_ID) {
      problems.push(
        'TEAMS_ALLOWED_TENANTS: missing; a MultiTenant bot can be installed by any Microsoft 365 organisation, so list the tenant ids whose users it may answer (or set MICROSOFT_APP_TENANT_ID to your own)',
      );
    }
  } else if (cfg.MICROSOFT_APP_PASSWORD) {
    problems.push('MICROSOFT_APP_ID: missing; MICROSOFT_APP_PASSWORD is set without it');
  } else if (cfg.TEAMS_ALLOW_UNAUTHENTICATED) {
    if (!isLoopback(cfg.HOST)) problems.push(`TEAMS_ALLOW_UNAUTHENTICATED: accepts unauthenticated activities, so it is refused when HOST (${cfg.HOST}) is not a loopback address`);
    // Replies and member look-ups go to TEAMS_SERVICE_URL only (an activity naming another serviceUrl is refused): it must be local too.
    if (!isLoopbackUrl(cfg.TEAMS_SERVICE_URL)) problems.push(`TEAMS_SERVICE_URL: with TEAMS_ALLOW_UNAUTHENTICATED it must be a loopback URL (your local Bot Framework Emulator or connector, e.g. http://127.0.0.1:3979), not ${cfg.TEAMS_SERVICE_URL}`);
    if (cfg.PUBLIC_URL) problems.push('TEAMS_ALLOW_UNAUTHENTICATED: refused with PUBLIC_URL set (a server others reach must authenticate Teams activities: set MICROSOFT_APP_ID)');
  }
  // Teams answers only the allowed tenants; by default the bot's own.
  if (cfg.TEAMS_ALLOWED_TENANTS.length === 0 && cfg.MICROSOFT_APP_TENANT_ID) cfg.TEAMS_ALLOWED_TENANTS = [cfg.MICROSOFT_APP_TENANT_ID.toLowerCase()];
  if (cfg.AZURE_ARM_CA_FILE && cfg.JIT_NETWORK !== 'azure') problems.push('AZURE_ARM_CA_FILE: only used with JIT_NETWORK=azure');
  if (cfg.JIT_LOCAL_CHANNEL && (env.JIT_LOCAL_CHANNEL === undefined || env.JIT_LOCAL_CHANNEL === '') && (!isLoopback(cfg.HOST) || localChannelExposure(cfg).length > 0)) {
    // Default: the local channel exists only on loopback, and only when nothing else reaches this server.
    cfg.JIT_LOCAL_CHANNEL = false;
  } else if (cfg.JIT_LOCAL_CHANNEL && !isLoopback(cfg.HOST)) {
    problems.push(`JIT_LOCAL_CHANNEL: the local channel lets anyone act as any principal; it is refused when HOST (${cfg.HOST}) is not a loopback address`);
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}
