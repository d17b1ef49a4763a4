// Teams' part of the configuration: its variables, their checks, and the factory bootstrap calls
// when they are set. botbuilder loads only then: this file imports none of it.
import { z } from 'zod';
import { bool, chatPlatformVars, GUID_RE, listVar, isLoopback, isLoopbackUrl, type EnvOf, type SharedEnv } from '../../config/vars.js';
import type { ChatAdapterDeps, ChatPlatformConfig } from '../chat/platforms.js';
import type { TeamsAdapter } from './adapter.js';

const env = {
  MICROSOFT_APP_ID: z.string().regex(GUID_RE, 'must be the bot\'s Microsoft App ID (a GUID)').optional(),
  MICROSOFT_APP_PASSWORD: z.string().min(1).optional(),
  // Azure Bot creates only SingleTenant and UserAssignedMSI bots since 31 July 2025; MultiTenant
  // stays for bots registered before.
  MICROSOFT_APP_TYPE: z
    .enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI'], { message: 'must be SingleTenant (the default), UserAssignedMSI, or MultiTenant (only for bots registered as multi-tenant before 31 July 2025)' })
    .default('SingleTenant'),
  MICROSOFT_APP_TENANT_ID: z.string().regex(GUID_RE, 'must be a tenant id (a GUID)').optional(),
  /**
   * Tenant ids whose Teams users the bot answers, comma-separated. Default: MICROSOFT_APP_TENANT_ID
   * (the bot's own tenant); a MultiTenant bot without either is refused at start.
   */
  TEAMS_ALLOWED_TENANTS: listVar<string>((part) => (GUID_RE.test(part) ? { value: part.toLowerCase() } : { problem: `"${part}" is not a tenant id (a GUID)` })),
  TEAMS_ALLOW_UNAUTHENTICATED: bool(false),
  TEAMS_SERVICE_URL: z.url({ message: 'must be the Bot Connector URL, e.g. https://smba.trafficmanager.net/teams/' }).default('https://smba.trafficmanager.net/teams/'),
  TEAMS_AUDIT_CHANNEL: z.string().min(1).optional(),
  /** TEAMS_AUDIT_INTERVAL, TEAMS_USER_CACHE_TTL (a Teams user's AAD object id → principal). */
  ...chatPlatformVars('TEAMS'),
};
export type TeamsEnv = EnvOf<typeof env>;

export const teamsConfig = {
  name: 'teams',
  env,
  check(cfg: TeamsEnv & SharedEnv, problems: string[]): void {
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
  },
  exposure: (cfg: TeamsEnv): string[] => [
    ...(cfg.MICROSOFT_APP_ID ? ['Teams (MICROSOFT_APP_ID)'] : []),
    ...(cfg.TEAMS_ALLOW_UNAUTHENTICATED ? ['TEAMS_ALLOW_UNAUTHENTICATED'] : []),
  ],
  configured: (cfg: TeamsEnv): boolean => Boolean(cfg.MICROSOFT_APP_ID || cfg.TEAMS_ALLOW_UNAUTHENTICATED),
  mode: (cfg: TeamsEnv): string | boolean => (cfg.MICROSOFT_APP_ID ? 'authenticated' : cfg.TEAMS_ALLOW_UNAUTHENTICATED ? 'UNAUTHENTICATED' : false),
  async create(cfg: TeamsEnv, deps: ChatAdapterDeps): Promise<TeamsAdapter> {
    if (!cfg.MICROSOFT_APP_ID) deps.log.warn('teams: TEAMS_ALLOW_UNAUTHENTICATED=true: activities on /api/messages are NOT authenticated (local testing only)');
    const { TeamsAdapter } = await import('./adapter.js');
    return new TeamsAdapter({
      settings: {
        appId: cfg.MICROSOFT_APP_ID ?? '',
        ...(cfg.MICROSOFT_APP_PASSWORD ? { appPassword: cfg.MICROSOFT_APP_PASSWORD } : {}),
        // Without an app id (local unauthenticated testing) botbuilder accepts only MultiTenant.
        appType: cfg.MICROSOFT_APP_ID ? cfg.MICROSOFT_APP_TYPE : 'MultiTenant',
        ...(cfg.MICROSOFT_APP_TENANT_ID ? { tenantId: cfg.MICROSOFT_APP_TENANT_ID } : {}),
        serviceUrl: cfg.TEAMS_SERVICE_URL,
        ...(cfg.TEAMS_AUDIT_CHANNEL ? { auditChannel: cfg.TEAMS_AUDIT_CHANNEL } : {}),
        auditIntervalMs: cfg.TEAMS_AUDIT_INTERVAL,
        userCacheTtlMs: cfg.TEAMS_USER_CACHE_TTL,
        allowedTenants: cfg.TEAMS_ALLOWED_TENANTS,
      },
      redis: deps.redis,
      prefix: deps.prefix,
      log: deps.log,
      metrics: deps.metrics,
      ...(deps.teamsAuth ? { auth: deps.teamsAuth } : {}),
    });
  },
} satisfies ChatPlatformConfig<TeamsEnv & SharedEnv>;
