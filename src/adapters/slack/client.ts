// The Slack Web API client as jit-bot sets it up: Bolt's logger on ours, quick retries, the
// errors that make a retry pointless, and users.info / users.lookupByEmail for the directory.
import { LogLevel, type webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from '../../log.js';
import type { SlackUsersApi } from './directory.js';

type Client = InstanceType<typeof webApi.WebClient>;

export function boltLogger(log: Logger): BoltLogger {
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
export const webClientOptions = ({ settings, log }: { settings: { apiUrl?: string }; log: Logger }) => ({
  ...(settings.apiUrl ? { slackApiUrl: settings.apiUrl } : {}),
  retryConfig: { retries: 2, factor: 2, minTimeout: 300, maxTimeout: 3000, randomize: true },
  logger: boltLogger(log),
});

/** Slack answers that are about the message itself or its destination: posting the same again cannot help. */
export const PERMANENT = new Set(['invalid_blocks', 'invalid_blocks_format', 'invalid_arguments', 'msg_too_long', 'channel_not_found', 'not_in_channel', 'is_archived', 'user_not_found', 'cannot_dm_bot', 'restricted_action', 'not_authed', 'invalid_auth', 'account_inactive', 'token_revoked', 'missing_scope']);

/** Slack's error code of a failed Web API call (`invalid_blocks` …), if it has one. */
export function slackError(err: unknown): string | undefined {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

/** users.info and users.lookupByEmail as the directory reads them. */
export function usersApiOf(client: Client): SlackUsersApi {
  return {
    info: async (user) => {
      const u = (await client.users.info({ user })).user;
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
        const r = await client.users.lookupByEmail({ email });
        return r.user?.id ? { id: r.user.id } : undefined;
      } catch (err) {
        if (slackError(err) === 'users_not_found') return undefined;
        throw err;
      }
    },
  };
}
