// OnCallDirectory on PagerDuty's REST API v2: GET /oncalls?schedule_ids[]=…&include[]=users.
// Any failure (network, timeout, non-2xx, unexpected body) throws: the caller then falls back to
// human approval, never to auto-approval.
import type { OnCallDirectory } from '../../app/ports.js';
import { parsePrincipal } from '../../core/ids.js';
import type { PrincipalId } from '../../core/types.js';

export interface PagerDutyOptions {
  token: string;
  /** Default https://api.pagerduty.com (tests point it elsewhere or intercept it). */
  apiUrl?: string;
  timeoutMs?: number;
  /** Answers are cached this long per (schedules, minute). */
  cacheMs?: number;
}

interface OnCallsResponse {
  oncalls?: { user?: { email?: string; id?: string }; schedule?: { id?: string } | null }[];
}

export class PagerDutyOnCall implements OnCallDirectory {
  private readonly cache = new Map<string, { at: number; emails: Set<string> }>();

  constructor(private readonly opts: PagerDutyOptions) {}

  async isOnCall(principal: PrincipalId, schedules: string[], at: number): Promise<boolean> {
    const key = [...schedules].sort().join(',');
    const hit = this.cache.get(key);
    const ttl = this.opts.cacheMs ?? 60_000;
    let emails = hit && at - hit.at < ttl ? hit.emails : undefined;
    if (!emails) {
      emails = await this.fetchOnCall(schedules, at);
      this.cache.set(key, { at, emails });
    }
    return emails.has(principal);
  }

  private async fetchOnCall(schedules: string[], at: number): Promise<Set<string>> {
    const url = new URL('/oncalls', this.opts.apiUrl ?? 'https://api.pagerduty.com');
    for (const s of schedules) url.searchParams.append('schedule_ids[]', s);
    url.searchParams.append('include[]', 'users');
    const when = new Date(at).toISOString();
    url.searchParams.set('since', when);
    url.searchParams.set('until', when);
    const res = await fetch(url, {
      headers: {
        authorization: `Token token=${this.opts.token}`,
        accept: 'application/vnd.pagerduty+json;version=2',
      },
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 3000),
    });
    if (!res.ok) throw new Error(`PagerDuty /oncalls answered HTTP ${res.status}`);
    const body = (await res.json()) as OnCallsResponse;
    if (!Array.isArray(body.oncalls)) throw new Error('PagerDuty /oncalls: no "oncalls" array in the answer');
    const emails = new Set<PrincipalId>();
    for (const o of body.oncalls) {
      if (o.schedule?.id && !schedules.includes(o.schedule.id)) continue;
      const who = o.user?.email ? parsePrincipal(o.user.email) : undefined;
      if (who) emails.add(who);
    }
    return emails;
  }
}
