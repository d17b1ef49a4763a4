// A person's home view, platform-neutral (a Slack App Home, a Teams personal tab card, the
// console): their requests waiting (withdrawable), their open grants (time left, how to connect,
// the extensions the policy still allows, close), the requests waiting for them as approver (the
// same card data, and so the same decision path, as the approval cards) and their last week.
// Kept current by the notifier, which asks each platform to refresh the homes a change concerns.
import { checkAccess, effectivePolicy, own } from '../core/policy.js';
import { connectionsFor, type Connection } from '../core/reply.js';
import { FINAL_STATUSES, type AccessRequest, type PrincipalId } from '../core/types.js';
import { extendOptions } from '../core/workflow.js';
import { approvalCardOf, type ChatContext } from './chat/notifier.js';
import type { ApprovalCard } from './chat/platform.js';
import type { Clock, RequestStore } from './ports.js';

export const HISTORY_MS = 7 * 86_400_000;

export interface HomeLimits {
  /** At most this many entries per section (the newest); the rest is counted in `more`. */
  perSection: number;
}

export const DEFAULT_HOME_LIMITS: HomeLimits = { perSection: 20 };

export interface PendingEntry {
  request: AccessRequest;
  /** Withdrawing runs `revoke` (which cancels a request that has not opened). */
  withdrawable: boolean;
}

export interface GrantEntry {
  request: AccessRequest;
  expiresAt: number;
  timeLeftMs: number;
  connections: Connection[];
  /** Extensions the policy still allows for this grant (none while one waits for approvers). */
  extendOptionsMs: number[];
  /** An extension asked for that waits for approvers. */
  extensionPending: boolean;
  closable: boolean;
}

export interface HomeSection<T> {
  items: T[];
  /** Entries left out past the limit. */
  more: number;
}

export interface HomeModel {
  principal: PrincipalId;
  /** When it was computed (epoch ms): "time left" is as of then. */
  at: number;
  pending: HomeSection<PendingEntry>;
  active: HomeSection<GrantEntry>;
  /** Requests (and extensions) waiting for this person's decision: the approval cards' data, seen as theirs. */
  approvals: HomeSection<ApprovalCard>;
  /** Their requests of the last 7 days that have ended, newest first. */
  history: HomeSection<AccessRequest>;
}

export interface HomeDeps {
  service: ChatContext;
  store: Pick<RequestStore, 'list'>;
  clock: Clock;
  limits?: Partial<HomeLimits>;
}

/** How many waiting requests are looked at for one approver's queue. */
const SCAN = 200;

export class HomeViews {
  private readonly limits: HomeLimits;

  constructor(private readonly deps: HomeDeps) {
    this.limits = { ...DEFAULT_HOME_LIMITS, ...deps.limits };
  }

  /** The home of `principal` as of now. `platform` is where it is shown (every platform sees the same data). */
  async homeView(principal: PrincipalId, platform: string): Promise<HomeModel> {
    void platform;
    const { store, clock } = this.deps;
    const now = clock.now();
    const [awaiting, pending, approved, active, mine] = await Promise.all([
      store.list({ requester: principal, status: 'awaiting_source', limit: 50 }),
      store.list({ requester: principal, status: 'pending', limit: 50 }),
      store.list({ requester: principal, status: 'approved', limit: 50 }),
      store.list({ requester: principal, status: 'active', limit: 50 }),
      store.list({ requester: principal, limit: 200 }),
    ]);
    const waiting = [...awaiting, ...pending, ...approved].sort(newestFirst);
    const history = mine.filter((r) => FINAL_STATUSES.includes(r.status) && r.updatedAt >= now - HISTORY_MS).sort((a, b) => b.updatedAt - a.updatedAt);
    return {
      principal,
      at: now,
      pending: this.section(waiting.map((r) => ({ request: r, withdrawable: r.status !== 'approved' || r.startAt !== undefined }))),
      active: this.section(active.sort(newestFirst).map((r) => this.grant(r, now))),
      approvals: this.section(await this.approvals(principal)),
      history: this.section(history),
    };
  }

  private section<T>(all: T[]): HomeSection<T> {
    const n = this.limits.perSection;
    return { items: all.slice(0, n), more: Math.max(0, all.length - n) };
  }

  private grant(r: AccessRequest, now: number): GrantEntry {
    const book = this.deps.service.policyBook();
    const target = own(book.targets, r.target);
    const expiresAt = r.expiresAt ?? now;
    let options: number[] = [];
    if (target && !r.pendingExtension) {
      const policy = effectivePolicy(book, target);
      try {
        const { rules } = checkAccess(policy, { ports: r.ports, durationMs: r.durationMs }, 0);
        const maxMs = Math.min(...rules.map((x) => x.maxDurationMs));
        options = extendOptions(policy.reminder, r.activatedAt ?? now, Math.max(expiresAt, now), maxMs);
      } catch {
        options = []; // the policy no longer allows these ports: no extension on offer
      }
    }
    return {
      request: r,
      expiresAt,
      timeLeftMs: Math.max(0, expiresAt - now),
      connections: connectionsFor(target ?? { name: r.target, id: r.targetId, os: 'linux' }, r.ports, r.rules),
      extendOptionsMs: options,
      extensionPending: Boolean(r.pendingExtension),
      closable: true,
    };
  }

  /** Requests and extensions this person may decide now (as the approval cards would let them), newest first. */
  private async approvals(principal: PrincipalId): Promise<ApprovalCard[]> {
    const { store, service } = this.deps;
    const [pending, active] = await Promise.all([store.list({ status: 'pending', limit: SCAN }), store.list({ status: 'active', limit: SCAN })]);
    const candidates = [
      ...pending.map((r) => ({ r, scope: 'request' as const })),
      ...active.filter((r) => r.pendingExtension).map((r) => ({ r, scope: 'extension' as const })),
    ];
    const cards = await Promise.all(
      candidates.map(async ({ r, scope }) => {
        const ok = await service.checkDecide(principal, r, 'approve', scope).then(
          () => true,
          () => false,
        );
        return ok ? approvalCardOf(service, r, scope, principal) : null;
      }),
    );
    return cards.filter((c): c is ApprovalCard => c !== null).sort((a, b) => newestFirst(a.request, b.request));
  }
}

const newestFirst = (a: AccessRequest, b: AccessRequest) => b.createdAt - a.createdAt;
