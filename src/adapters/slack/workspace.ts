// Which Slack workspace (or Enterprise Grid org) a request comes from, and whether that is the
// one the bot token belongs to (auth.test): every request from elsewhere is refused.
import type { Middleware, AnyMiddlewareArgs } from '@slack/bolt';
import type { Logger } from '../../log.js';

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

export function workspaceOf(auth: { team_id?: string; enterprise_id?: string; is_enterprise_install?: boolean }): SlackWorkspace | undefined {
  if (!auth.team_id && !auth.enterprise_id) return undefined;
  return { teamId: auth.team_id ?? '', ...(auth.enterprise_id ? { enterpriseId: auth.enterprise_id } : {}), enterpriseInstall: auth.is_enterprise_install === true };
}

/**
 * Bolt middleware run before every listener: a request from another workspace (or while the
 * installed one is unknown) is refused, reading and changing nothing (no users.info, no Redis).
 * Commands get the refusal in the ack, clicks by response_url, a modal's submission as an error
 * on the block `modalErrorBlock[callback_id]` names, a typeahead no options.
 */
export function refuseForeign(installed: () => Promise<SlackWorkspace | undefined>, log: Logger, modalErrorBlock: Record<string, string>): Middleware<AnyMiddlewareArgs> {
  return async (args) => {
    const home = await installed();
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
    const id = body.type === 'view_submission' ? body.view?.callback_id : undefined;
    const block = id && Object.hasOwn(modalErrorBlock, id) ? modalErrorBlock[id] : undefined;
    if (block) return ack({ response_action: 'errors', errors: { [block]: text.slice(0, 150) } });
    if (body.type === 'block_suggestion') return ack({ options: [] });
    await ack();
    if (body.type === 'block_actions' && respond) await respond({ response_type: 'ephemeral', replace_original: false, text });
  };
}
