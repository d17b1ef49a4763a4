// Configuration from environment variables, validated at start. A bad or missing value gets a
// message that names the variable. The core's variables are here; each adapter owns its own part
// (src/adapters/<adapter>/config.ts: variables, checks, factory) and this file merges them into
// the one schema.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parsePrincipal, type PrincipalId } from '../core/ids.js';
import { parseSource } from '../core/source.js';
import { azureEnv, checkAzure } from '../adapters/azure/config.js';
import { CHAT_PLATFORM_CONFIGS, CHAT_PLATFORM_ENV } from '../adapters/chat/platforms.js';
import { pagerDutyEnv } from '../adapters/pagerduty/config.js';
import { bool, durationVar, isLoopback, leadVar, listVar, rate } from './vars.js';

export { isLoopback };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const coreEnv = {
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
  JIT_NETWORK: z
    .enum(['simulated', 'azure', 'defender'], { message: 'must be "simulated", "azure" (the bot writes NSG / firewall rules) or "defender" (Defender for Cloud\'s JIT VM access writes them)' })
    .default('simulated'),
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
  JIT_TRUSTED_PROXIES: listVar<string>((part) => {
    try {
      return { value: parseSource(part) };
    } catch {
      return { problem: `"${part}" is not an address or CIDR` };
    }
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
  JIT_API_TOKENS: listVar<{ principal: PrincipalId; sha256: string }>((part) => {
    const m = /^([^=\s]+@[^=\s]+)=sha256:([0-9a-f]{64})$/i.exec(part);
    const principal = m ? parsePrincipal(m[1]!) : undefined;
    if (!m || !principal) return { problem: `"${part.replace(/=.*/, '=…')}" must be principal=sha256:<64 hex digits> (npm run api-token -- <principal>)` };
    return { value: { principal, sha256: m[2]!.toLowerCase() } };
  }),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /**
   * How far V8 lets the server's heap grow past what was live at the last full GC before it
   * collects again, in percent (V8's --heap-growing-percent); 0 leaves V8's own choice (up to 300 %
   * on a machine with much memory). docs/benchmarks.md, "Footprint".
   */
  JIT_HEAP_GROWING_PERCENT: z.coerce.number({ message: 'must be a whole number of percent, e.g. 50' }).int({ message: 'must be a whole number of percent, e.g. 50' }).min(0).max(300).default(50),
  /**
   * How long a directory group's membership (Entra ID, Slack user group) is trusted after it was
   * read; it is read again every third of this. Past it, a group that cannot be read holds no rights.
   */
  JIT_DIRECTORY_TTL: durationVar('10m').refine((ms) => ms >= 10_000 && ms <= 24 * 3600_000, { message: 'must be between 10s and 24h, e.g. 10m' }),
  /** Microsoft Graph for Entra ID groups (national clouds: https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn). */
  JIT_GRAPH_URL: z.url({ message: 'must be the Microsoft Graph URL, e.g. https://graph.microsoft.com' }).default('https://graph.microsoft.com'),
};

const schema = z.object({ ...coreEnv, ...CHAT_PLATFORM_ENV, ...azureEnv, ...pagerDutyEnv });

export type Config = z.infer<typeof schema>;

/** The names of every variable the configuration reads (the core's and every adapter's). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);


/** What makes this server reachable by others (a chat platform, a public URL): the local channel is off by default beside any of them. */
export function localChannelExposure(cfg: Config): string[] {
  return [...CHAT_PLATFORM_CONFIGS.flatMap((p) => p.exposure(cfg)), ...(cfg.PUBLIC_URL ? ['PUBLIC_URL'] : [])];
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
  // Each adapter checks its own variables (chat platforms in their order, then the network's).
  for (const p of CHAT_PLATFORM_CONFIGS) p.check(cfg, problems);
  checkAzure(cfg, problems);
  if (cfg.JIT_LOCAL_CHANNEL && (env.JIT_LOCAL_CHANNEL === undefined || env.JIT_LOCAL_CHANNEL === '') && (!isLoopback(cfg.HOST) || localChannelExposure(cfg).length > 0)) {
    // Default: the local channel exists only on loopback, and only when nothing else reaches this server.
    cfg.JIT_LOCAL_CHANNEL = false;
  } else if (cfg.JIT_LOCAL_CHANNEL && !isLoopback(cfg.HOST)) {
    problems.push(`JIT_LOCAL_CHANNEL: the local channel lets anyone act as any principal; it is refused when HOST (${cfg.HOST}) is not a loopback address`);
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}
