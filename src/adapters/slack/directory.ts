// Slack user id ⇄ principal. The user id comes only from a verified request; it resolves to a
// principal by the policy file's explicit mapping (`principals.<email>.slack`), else by the email
// on the Slack profile (`users.info`, needs users:read.email), cached with a TTL. An explicit
// mapping pins the principal to that Slack user: another user whose profile email is the
// principal's is refused. The reverse (who to DM) uses the mapping, else `users.lookupByEmail`.
import { parsePrincipal } from '../../core/ids.js';
import { listedPrincipals, type PolicyBook } from '../../core/policy.js';
import type { PrincipalId } from '../../core/types.js';

/** The two Web API calls the directory needs, as Slack documents their answers. */
export interface SlackUsersApi {
  info(user: string): Promise<{ id: string; deleted?: boolean; is_bot?: boolean; tz?: string; profile?: { email?: string } } | undefined>;
  lookupByEmail(email: string): Promise<{ id: string } | undefined>;
}

export interface SlackIdentity {
  principal: PrincipalId;
  /** IANA time zone of the Slack profile (for `at 14:00`). */
  timeZone?: string;
}

export class UnresolvedUserError extends Error {
  constructor(userId: string, why: string) {
    super(`your Slack user (${userId}) does not map to a jit-bot principal: ${why}. Ask a JIT Admin to add "slack: ${userId}" to your entry under principals in the policy file`);
    this.name = 'UnresolvedUserError';
  }
}

/** The profile email names a principal the policy file maps to another Slack user. */
export class PinnedIdentityError extends UnresolvedUserError {
  constructor(userId: string, principal: PrincipalId) {
    super(userId, '');
    this.message = `${principal} is mapped to another Slack user under principals in the policy file, so your Slack user (${userId}) cannot act as ${principal}, although your profile email is the same. Ask a JIT Admin if this is wrong`;
    this.name = 'PinnedIdentityError';
  }
}

interface Cached<T> {
  value: T;
  until: number;
}

export class SlackDirectory {
  private byUser = new Map<string, Cached<SlackIdentity | null>>();
  private byPrincipal = new Map<string, Cached<string | null>>();
  private mapped: { book: PolicyBook; toPrincipal: Map<string, PrincipalId>; toUser: Map<PrincipalId, string> } | undefined;

  constructor(
    private readonly api: SlackUsersApi,
    private readonly book: () => PolicyBook,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private mapping() {
    const book = this.book();
    if (this.mapped?.book !== book) {
      const toPrincipal = new Map<string, PrincipalId>();
      const toUser = new Map<PrincipalId, string>();
      for (const [principal, info] of listedPrincipals(book)) {
        if (info.slack) {
          toPrincipal.set(info.slack, principal);
          toUser.set(principal, info.slack);
        }
      }
      this.mapped = { book, toPrincipal, toUser };
    }
    return this.mapped;
  }

  /** The principal behind a verified Slack user id; throws UnresolvedUserError with a way out. */
  async resolve(userId: string): Promise<SlackIdentity> {
    const identity = await this.lookup(userId);
    const pinned = this.mapping().toUser.get(identity.principal);
    if (pinned !== undefined && pinned !== userId) throw new PinnedIdentityError(userId, identity.principal);
    return identity;
  }

  private async lookup(userId: string): Promise<SlackIdentity> {
    const explicit = this.mapping().toPrincipal.get(userId);
    const hit = this.byUser.get(userId);
    if (hit && hit.until > this.now()) {
      if (hit.value) return explicit ? { ...hit.value, principal: explicit } : hit.value;
      if (explicit) return { principal: explicit };
      throw new UnresolvedUserError(userId, 'no email on the Slack profile');
    }
    let user: Awaited<ReturnType<SlackUsersApi['info']>>;
    try {
      user = await this.api.info(userId);
    } catch (err) {
      // An explicit mapping works even when Slack's directory does not answer.
      if (explicit) return { principal: explicit };
      throw err;
    }
    let identity: SlackIdentity | null = null;
    const email = user?.profile?.email ? parsePrincipal(user.profile.email) : undefined;
    if (user && !user.deleted && !user.is_bot && (explicit || email)) {
      identity = { principal: explicit ?? email!, ...(user.tz ? { timeZone: user.tz } : {}) };
    }
    this.byUser.set(userId, { value: identity, until: this.now() + this.ttlMs });
    if (identity) return identity;
    if (user?.deleted) throw new UnresolvedUserError(userId, 'the Slack account is deactivated');
    if (user?.is_bot) throw new UnresolvedUserError(userId, 'bots cannot request access');
    throw new UnresolvedUserError(userId, 'no email on the Slack profile');
  }

  /** The Slack user id to DM a principal, or null when none is known. */
  async userOf(principal: PrincipalId): Promise<string | null> {
    const explicit = this.mapping().toUser.get(principal);
    if (explicit) return explicit;
    const hit = this.byPrincipal.get(principal);
    if (hit && hit.until > this.now()) return hit.value;
    let id: string | null = null;
    try {
      id = (await this.api.lookupByEmail(principal))?.id ?? null;
    } catch {
      id = null;
    }
    this.byPrincipal.set(principal, { value: id, until: this.now() + this.ttlMs });
    return id;
  }
}
