// Slack's part of the configuration: its variables, their checks, and the factory bootstrap calls
// when they are set. The SDK (Bolt) loads only then: this file imports none of it.
import { z } from 'zod';
import { chatPlatformVars, type EnvOf } from '../../config/vars.js';
import type { ChatAdapterDeps, ChatPlatformConfig } from '../chat/platforms.js';
import type { SlackAdapter } from './adapter.js';

const env = {
  SLACK_SIGNING_SECRET: z.string().min(8, 'looks too short for a Slack signing secret').optional(),
  SLACK_BOT_TOKEN: z.string().regex(/^xox[bp]-/, 'must be a bot token (xoxb-…) from the app\'s OAuth & Permissions page').optional(),
  SLACK_API_URL: z.url({ message: 'must be the Web API base URL, e.g. https://slack.com/api/' }).optional(),
  SLACK_AUDIT_CHANNEL: z.string().regex(/^[CGD][A-Z0-9]{2,}$/, 'must be a channel id such as C0123ABCD (not a #name)').optional(),
  ...chatPlatformVars('SLACK'),
};
export type SlackEnv = EnvOf<typeof env>;

export const slackConfig = {
  name: 'slack',
  env,
  check(cfg: SlackEnv, problems: string[]): void {
    if (Boolean(cfg.SLACK_SIGNING_SECRET) !== Boolean(cfg.SLACK_BOT_TOKEN)) {
      const missing = cfg.SLACK_SIGNING_SECRET ? 'SLACK_BOT_TOKEN' : 'SLACK_SIGNING_SECRET';
      problems.push(`${missing}: missing; Slack needs both SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or neither, to run without Slack)`);
    }
  },
  exposure: (cfg: SlackEnv): string[] => (cfg.SLACK_SIGNING_SECRET ? ['Slack (SLACK_SIGNING_SECRET)'] : []),
  configured: (cfg: SlackEnv): boolean => Boolean(cfg.SLACK_SIGNING_SECRET && cfg.SLACK_BOT_TOKEN),
  /** What the start-up log line says of it. */
  mode: (cfg: SlackEnv): string | boolean => Boolean(cfg.SLACK_SIGNING_SECRET && cfg.SLACK_BOT_TOKEN),
  async create(cfg: SlackEnv, deps: ChatAdapterDeps): Promise<SlackAdapter> {
    const { SlackAdapter } = await import('./adapter.js');
    return SlackAdapter.create({
      settings: {
        signingSecret: cfg.SLACK_SIGNING_SECRET ?? '',
        botToken: cfg.SLACK_BOT_TOKEN ?? '',
        ...(cfg.SLACK_API_URL ? { apiUrl: cfg.SLACK_API_URL.endsWith('/') ? cfg.SLACK_API_URL : `${cfg.SLACK_API_URL}/` } : {}),
        ...(cfg.SLACK_AUDIT_CHANNEL ? { auditChannel: cfg.SLACK_AUDIT_CHANNEL } : {}),
        auditIntervalMs: cfg.SLACK_AUDIT_INTERVAL,
        userCacheTtlMs: cfg.SLACK_USER_CACHE_TTL,
      },
      redis: deps.redis,
      prefix: deps.prefix,
      log: deps.log,
      metrics: deps.metrics,
    });
  },
} satisfies ChatPlatformConfig<SlackEnv>;
