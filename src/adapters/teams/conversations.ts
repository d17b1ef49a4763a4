// Teams' conversations and people, in Redis: the conversation references proactive messages need
// (each conversation's, and each person's 1:1 chat with the bot), each person's Teams user id (for
// a card's refresh.userIds), and who an activity's sender is (AAD object id → principal: a pin in
// the policy file, else the member's UPN, cached for TEAMS_USER_CACHE_TTL).
import { TeamsInfo, TurnContext, type ConversationReference } from 'botbuilder';
import type { Redis } from 'ioredis';
import { parsePrincipal } from '../../core/ids.js';
import { listedPrincipals, type PolicyBook } from '../../core/policy.js';
import type { PrincipalId } from '../../core/types.js';

const REF_TTL_S = 365 * 86_400;

export interface TeamsConversationDeps {
  redis: Redis;
  key: (...parts: string[]) => string;
  settings: { appId: string; serviceUrl: string; tenantId?: string; userCacheTtlMs: number };
  book: () => PolicyBook;
}

export class TeamsConversations {
  private identities = new Map<string, { principal: PrincipalId; until: number }>();

  constructor(private readonly deps: TeamsConversationDeps) {}

  /** Stores the conversation reference (for proactive messages) and the member's Teams id. */
  async remember(context: TurnContext): Promise<void> {
    const a = context.activity;
    const ref = TurnContext.getConversationReference(a);
    const convType = a.conversation?.conversationType;
    const multi = this.deps.redis.multi();
    if (a.conversation?.id) multi.set(this.deps.key('ref', 'conv', a.conversation.id), JSON.stringify(ref), 'EX', REF_TTL_S);
    const principal = a.from?.aadObjectId ? await this.principalOf(context).catch(() => null) : null;
    if (principal && a.from?.id) {
      multi.set(this.deps.key('member', principal), JSON.stringify({ id: a.from.id, aad: a.from.aadObjectId }), 'EX', REF_TTL_S);
      if (convType === 'personal') multi.set(this.deps.key('ref', 'user', principal), JSON.stringify(ref), 'EX', REF_TTL_S);
    }
    await multi.exec();
  }

  /** The principal behind the authenticated activity's sender (AAD object id; never card data). */
  async principalOf(context: TurnContext): Promise<PrincipalId> {
    const from = context.activity.from;
    const aad = from?.aadObjectId;
    if (!aad) throw new Error('this Teams activity has no AAD object id; jit-bot answers only users of your tenant');
    const principals = this.deps.book().principals;
    for (const [principal, info] of listedPrincipals(this.deps.book())) if (info.teams && info.teams.toLowerCase() === aad.toLowerCase()) return principal;
    // A principal pinned to a Teams account (`teams: <AAD object id>`) is that account only.
    const pinnedElsewhere = (upn: PrincipalId) => {
      const pin = principals[upn]?.teams;
      return pin !== undefined && pin.toLowerCase() !== aad.toLowerCase();
    };
    const hit = this.identities.get(aad);
    if (hit && hit.until > Date.now() && !pinnedElsewhere(hit.principal)) return hit.principal;
    const member = await TeamsInfo.getMember(context, from.id);
    const upn = parsePrincipal(member.userPrincipalName ?? member.email ?? '');
    if (!upn) {
      throw new Error(`your Teams account (${aad}) has no UPN or email jit-bot can use; ask a JIT Admin to add "teams: ${aad}" to your entry under principals in the policy file`);
    }
    if (pinnedElsewhere(upn)) {
      throw new Error(`${upn} is mapped to another Teams account under principals in the policy file, so your Teams account (${aad}) cannot act as ${upn}`);
    }
    this.identities.set(aad, { principal: upn, until: Date.now() + this.deps.settings.userCacheTtlMs });
    return upn;
  }

  /** Teams user ids (29:…) of these principals, as far as they have talked to the bot. */
  async memberIds(principals: PrincipalId[]): Promise<string[]> {
    if (principals.length === 0) return [];
    const raw = await this.deps.redis.mget(...principals.map((p) => this.deps.key('member', p)));
    return raw.flatMap((v) => (v ? [(JSON.parse(v) as { id: string }).id] : []));
  }

  channelRef(channelId: string): Partial<ConversationReference> {
    return {
      channelId: 'msteams',
      serviceUrl: this.deps.settings.serviceUrl,
      conversation: { id: channelId, isGroup: true, conversationType: 'channel', name: '', ...(this.deps.settings.tenantId ? { tenantId: this.deps.settings.tenantId } : {}) },
      bot: { id: this.deps.settings.appId || 'jit-bot', name: 'jit-bot' },
    };
  }

  async refFor(conversationId: string): Promise<Partial<ConversationReference>> {
    const raw = await this.deps.redis.get(this.deps.key('ref', 'conv', conversationId));
    return raw ? (JSON.parse(raw) as Partial<ConversationReference>) : this.channelRef(conversationId);
  }

  async userRef(principal: PrincipalId): Promise<Partial<ConversationReference> | null> {
    const raw = await this.deps.redis.get(this.deps.key('ref', 'user', principal));
    return raw ? (JSON.parse(raw) as Partial<ConversationReference>) : null;
  }
}
