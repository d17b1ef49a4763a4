// Slack user groups (`@oncall`) as policy groups: `usergroups.users.list` (scope usergroups:read)
// gives the members' user ids; each becomes a principal through its profile email (`users.info`,
// users:read.email), or through a `principals.<p>.slack` pin. Deactivated users and bots are no
// members. Any failed call fails the whole read: a partial list is never returned.
import type { GroupDirectory } from '../../app/ports.js';
import type { DirectoryMember } from '../../core/directory.js';
import type { SlackUsersApi } from './directory.js';

export interface SlackUserGroupsApi {
  /** `usergroups.users.list`: the user ids of a user group (throws on `ok: false`). */
  list(usergroup: string): Promise<string[]>;
  info: SlackUsersApi['info'];
}

export class SlackUserGroups implements GroupDirectory {
  readonly kind = 'slack';
  readonly pinPlatform = 'slack';
  label(usergroup: string): string {
    return `Slack user group ${usergroup}`;
  }
  private users = new Map<string, { member: DirectoryMember | null; until: number }>();

  constructor(
    private readonly api: SlackUserGroupsApi,
    /** How long a user's profile email is reused (SLACK_USER_CACHE_TTL). */
    private readonly userTtlMs: number,
    private readonly now: () => number = Date.now,
    private readonly concurrency = 8,
  ) {}

  async members(usergroup: string): Promise<DirectoryMember[]> {
    const ids = [...new Set(await this.api.list(usergroup))];
    const out: Array<DirectoryMember | null> = new Array(ids.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const i = next++;
        out[i] = await this.member(ids[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, ids.length) }, worker));
    return out.filter((m): m is DirectoryMember => m !== null);
  }

  private async member(id: string): Promise<DirectoryMember | null> {
    const hit = this.users.get(id);
    if (hit && hit.until > this.now()) return hit.member;
    const u = await this.api.info(id);
    // The email is a name of the member; principalsOfMember parses it (src/core/directory.ts).
    const email = u?.profile?.email;
    // A pinned principal (principals.<p>.slack: <id>) needs no email: the id is kept for it.
    const member = u && !u.deleted && !u.is_bot ? { id, names: email ? [email] : [] } : null;
    this.users.set(id, { member, until: this.now() + this.userTtlMs });
    return member;
  }
}
