// The one notifier of every chat platform (after Teleport's BaseApp): for each notification it
// decides what to post, update and where on each platform (ChatPlatform, platform.ts), keeps the
// references of the posted cards (MessageRefs), updates them in order and never to an older
// state, stands in plain text for a card a platform refuses (and audits that), tells the
// requester on the platform they asked from, and feeds each platform's audit channel.
import { requesterNotice, type CardScope } from '../../core/messages.js';
import { effectivePolicy, own } from '../../core/policy.js';
import { expandRefs } from '../../core/rbac.js';
import { connectionsFor } from '../../core/reply.js';
import type { AccessRequest, AuditEvent, PrincipalId } from '../../core/types.js';
import { routeOn, type PlatformRoute } from '../../core/workflow.js';
import type { Notification, Notifier } from '../ports.js';
import type { JitService } from '../service.js';
import type { ApprovalCard, ChatMessage, ChatPlatform, Destination, HomeViewsPort, MessageRefs, PostedMessage } from './platform.js';
import { ChannelPoster } from './poster.js';

/** What the notifier reads from the use cases. */
export type ChatContext = Pick<JitService, 'policyBook' | 'get' | 'approversFor' | 'checkDecide' | 'auditDelivery'>;

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface ChatNotifierDeps {
  platforms: ChatPlatform[];
  refs: MessageRefs;
  log: { warn: Log; error: Log };
  /** The wait before the second try of a card post that failed for a transient reason. */
  retryMs?: number;
}

/** The card of `req` as `viewer` (if any) sees it now: the same data for every platform. */
export async function approvalCardOf(ctx: ChatContext, req: AccessRequest, scope: CardScope, viewer?: PrincipalId, outcome?: 'approved' | 'denied'): Promise<ApprovalCard> {
  const book = ctx.policyBook();
  const target = own(book.targets, req.target);
  const approval = target ? effectivePolicy(book, target).approval : undefined;
  const open = req.status === 'pending' || (req.status === 'active' && Boolean(req.pendingExtension));
  return {
    request: req,
    scope,
    quorum: approval?.quorum ?? 1,
    escalatedTo: req.escalatedAt && approval?.escalation ? expandRefs(book, approval.escalation.approvers) : [],
    ...(outcome ? { outcome } : {}),
    deciders: open ? await ctx.approversFor(req) : [],
    ...(viewer ? { viewer: { principal: viewer, canDecide: await ctx.checkDecide(viewer, req, 'approve', scope).then(() => true, () => false) } } : {}),
  };
}

/** One card post: where it went, what reached it, and why not the card. */
interface Delivery {
  to: Destination;
  ref: string;
  sent: 'card' | 'text' | 'none';
  error?: string;
}

/** The card updates of one request, card and platform in this process: run one after another. */
interface UpdateChain {
  tail: Promise<void>;
  queued: number;
  /** The version (and outcome) the last update here showed. */
  shown?: string;
}

/** How often one update re-renders a request that moved on while it was being shown. */
const MAX_ROUNDS = 3;

export class ChatNotifier implements Notifier {
  private ctx: ChatContext | undefined;
  private readonly posters = new Map<string, ChannelPoster>();
  private readonly chains = new Map<string, UpdateChain>();
  /** Home refreshes running, per platform and principal (`again`: a change came in meanwhile). */
  private readonly homes = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly homeRuns = new Set<Promise<void>>();

  constructor(private readonly deps: ChatNotifierDeps) {
    for (const p of deps.platforms) {
      const onError = (channel: string, err: unknown, dropped: string[]) =>
        deps.log.error(`${p.name}: audit lines could not be posted (they stay in the audit log)`, { channel, err, lines: dropped.length });
      this.posters.set(p.name, new ChannelPoster((channel, text) => p.postText(channel, text), p.auditFeed.intervalMs, onError));
    }
  }

  /** Hands it the use cases (they exist only after the notifier). */
  bind(ctx: ChatContext): void {
    this.ctx = ctx;
  }

  private use(): ChatContext {
    if (!this.ctx) throw new Error('chat notifier used before bind()');
    return this.ctx;
  }

  async notify(n: Notification): Promise<void> {
    await Promise.all(
      this.deps.platforms.map((p) =>
        this.notifyOn(p, n).catch((err: unknown) => this.deps.log.warn(`${p.name}: notification not delivered`, { kind: n.kind, request: n.request.id, err })),
      ),
    );
    // Not awaited: the use case that notified (a click, a command) does not wait for home views.
    const run = this.refreshHomes(n).catch((err: unknown) => this.deps.log.warn('home views not refreshed', { request: n.request.id, err }));
    this.homeRuns.add(run);
    void run.finally(() => this.homeRuns.delete(run));
  }

  /** Resolves once the home refreshes started so far have finished (tests, shutdown). */
  async homesSettled(): Promise<void> {
    while (this.homeRuns.size > 0) await Promise.all([...this.homeRuns]);
  }

  /**
   * Every platform with home views shows them again to the principals this change concerns who
   * keep one there: the requester and whoever may decide on the request (before or after the
   * change: those the notification names too). Per platform and principal one refresh runs at a time; changes that
   * arrive meanwhile make one more, which shows the latest state.
   */
  private async refreshHomes(n: Notification): Promise<void> {
    const homes = this.deps.platforms.flatMap((p) => (p.homes ? [{ p, port: p.homes }] : []));
    if (homes.length === 0) return;
    const viewers = await Promise.all(homes.map(({ port }) => port.viewers().catch(() => new Set<PrincipalId>())));
    // Nobody keeps a home anywhere: nothing to work out (the common case of a busy bot).
    if (viewers.every((v) => v.size === 0)) return;
    const deciders = await this.use().approversFor(n.request).catch(() => [] as PrincipalId[]);
    const concerned = [...new Set([n.request.requester, ...deciders, ...(n.approvers ?? [])])];
    await Promise.all(homes.flatMap(({ p, port }, i) => concerned.filter((c) => viewers[i]!.has(c)).map((principal) => this.refreshHome(p.name, port, principal))));
  }

  private refreshHome(platform: string, port: HomeViewsPort, principal: PrincipalId): Promise<void> {
    const key = `${platform}:${principal}`;
    const running = this.homes.get(key);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state: { again: boolean; done: Promise<void> } = { again: true, done: Promise.resolve() };
    this.homes.set(key, state);
    state.done = (async () => {
      await Promise.resolve();
      while (state.again) {
        state.again = false;
        try {
          await port.refresh(principal);
        } catch (err) {
          this.deps.log.warn(`${platform}: home view not refreshed`, { principal, err });
        }
      }
      this.homes.delete(key);
    })();
    return state.done;
  }

  async audit(event: AuditEvent): Promise<void> {
    if (this.deps.platforms.length === 0) return;
    const book = this.use().policyBook();
    const target = own(book.targets, event.target);
    const channels = target ? effectivePolicy(book, target).channels : {};
    for (const p of this.deps.platforms) {
      const channel = own(channels, p.name)?.audit ?? p.auditFeed.channel;
      if (channel) this.posters.get(p.name)!.enqueue(channel, p.auditLine(event));
    }
  }

  /** Stops posting audit lines, after giving the queued ones up to `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    await Promise.race([this.homesSettled(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    await Promise.all([...this.posters.values()].map((q) => q.close(graceMs)));
  }

  private async notifyOn(p: ChatPlatform, n: Notification): Promise<void> {
    const r = n.request;
    switch (n.kind) {
      case 'approval_needed':
      case 'extension_needed':
        return this.postCards(p, n.kind === 'extension_needed' ? 'extension' : 'request', r, routeOn(n.route, p.name), n.approvers ?? []);
      case 'escalated':
        await this.updateCards(p, 'request', r);
        return this.postCards(p, 'request', r, { dm: true }, n.approvers ?? []);
      case 'approval_progress':
        return this.updateCards(p, r.status === 'active' && r.pendingExtension ? 'extension' : 'request', r);
      case 'approved':
      case 'cancelled':
        return this.updateCards(p, 'request', r);
      case 'activated': {
        await this.updateCards(p, 'request', r);
        const target = own(this.use().policyBook().targets, r.target);
        if (target) await this.tell(p, r, { kind: 'active', request: r, connections: connectionsFor(target, r.ports, r.rules) });
        return;
      }
      case 'expiring':
        return this.tell(p, r, { kind: 'expiring', request: r, extendOptionsMs: n.extendOptionsMs ?? [] });
      case 'extended':
      case 'extension_denied':
        await this.updateCards(p, 'extension', r, n.kind === 'extended' ? 'approved' : 'denied');
        return this.tell(p, r, { kind: 'notice', request: r, notice: requesterNotice(n.kind, r, n.actor) });
      case 'denied':
      case 'timed_out':
      case 'failed':
      case 'expired':
      case 'revoked':
        await this.updateCards(p, 'request', r);
        return this.tell(p, r, { kind: 'notice', request: r, notice: requesterNotice(n.kind, r, n.actor) });
      default:
        return unreachable(n.kind);
    }
  }

  /** A message to the requester, on the platform the request came from. */
  private async tell(p: ChatPlatform, r: AccessRequest, m: ChatMessage): Promise<void> {
    if (r.origin.via !== p.name) return;
    const to = await this.dmOf(p, r.requester);
    if (to) await p.post(to, m);
  }

  private async dmOf(p: ChatPlatform, principal: PrincipalId): Promise<Destination | null> {
    const id = await p.recipient(principal);
    if (!id) this.deps.log.warn(`${p.name}: no direct-message destination for a principal (they never used the bot there); not sent`, { principal });
    return id ? { kind: 'dm', id, principal } : null;
  }

  /**
   * Posts an approval card where the route says (a channel and/or the approvers' DMs, each DM
   * copy the approver's own view) and remembers each copy. A copy the platform refuses is
   * replaced by plain text (see postCard); when no copy reached anyone, the approvers get the
   * plain text by DM. Every fallback is audited (`notify.card_fallback`), so a request nobody
   * could see is on record.
   */
  private async postCards(p: ChatPlatform, scope: CardScope, r: AccessRequest, route: PlatformRoute | undefined, approvers: PrincipalId[]): Promise<void> {
    if (!route) return;
    const ctx = this.use();
    const card = await approvalCardOf(ctx, r, scope);
    const copies: Array<Promise<Delivery | null>> = [];
    if (route.channel) copies.push(this.postCard(p, { kind: 'channel', id: route.channel }, card));
    if (route.dm) {
      for (const principal of approvers) {
        copies.push(this.dmOf(p, principal).then(async (to) => (to ? this.postCard(p, to, await approvalCardOf(ctx, r, scope, principal)) : null)));
      }
    }
    const outcomes = (await Promise.allSettled(copies)).flatMap((s) => {
      if (s.status === 'fulfilled') return s.value ? [s.value] : [];
      this.deps.log.warn(`${p.name}: approval card not posted`, { request: r.id, err: s.reason });
      return [];
    });
    const posted: PostedMessage[] = outcomes.flatMap((o) => (o.ref ? [posting(o.ref, o.to)] : []));
    const failed = outcomes.filter((o) => o.error);
    // Nothing reached anyone (the channel is gone, the bot was removed from it ...): DM the
    // approvers the plain text, unless the route already tried their DMs.
    const dmFallback: PrincipalId[] = [];
    if (posted.length === 0 && failed.length > 0 && !route.dm) {
      const message: ChatMessage = { kind: 'card_fallback', card, error: failed[0]!.error! };
      const dms = await Promise.allSettled(approvers.map(async (principal) => {
        const to = await this.dmOf(p, principal);
        return to ? posting(await p.post(to, message), to) : null;
      }));
      for (const d of dms) {
        if (d.status === 'rejected') this.deps.log.warn(`${p.name}: approval card stand-in not sent by DM`, { request: r.id, err: d.reason });
        else if (d.value) {
          posted.push(d.value);
          dmFallback.push(d.value.viewer!);
        }
      }
    }
    for (const o of failed) {
      const delivered = o.sent === 'text' ? 'text' : dmFallback.length ? 'approver_dms' : 'none';
      await ctx
        .auditDelivery(r, p.name, {
          platform: p.name,
          card: scope,
          destination: o.to.id,
          error: o.error!,
          delivered,
          ...(delivered === 'approver_dms' ? { approvers: dmFallback.join(' ') } : {}),
        })
        .catch((err: unknown) => this.deps.log.error(`${p.name}: could not audit a card fallback`, { request: r.id, err }));
    }
    const kept = posted.filter((m) => m.ref);
    if (kept.length) await this.deps.refs.add(p.name, scope, r.id, kept);
  }

  /**
   * Posts one copy of an approval card. A post that fails for a transient reason (after the
   * platform client's own retries) is tried once more; if it fails anyway, or the platform
   * refuses the card itself, a plain-text stand-in saying how to decide goes to the same place.
   */
  private async postCard(p: ChatPlatform, to: Destination, card: ApprovalCard): Promise<Delivery> {
    let error = 'error';
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        return { to, ref: await p.post(to, { kind: 'approval', card }), sent: 'card' };
      } catch (err) {
        const failure = p.failure(err);
        error = failure.code;
        this.deps.log.warn(`${p.name}: approval card not posted`, { request: card.request.id, destination: to.id, attempt, err });
        if (failure.permanent || attempt === 2) break;
        await new Promise((ok) => setTimeout(ok, this.deps.retryMs ?? 1000));
      }
    }
    try {
      return { to, ref: await p.post(to, { kind: 'card_fallback', card, error }), error, sent: 'text' };
    } catch (err) {
      this.deps.log.warn(`${p.name}: approval card stand-in not posted either`, { request: card.request.id, destination: to.id, err });
      return { to, ref: '', error, sent: 'none' };
    }
  }

  /**
   * Updates every copy of a request's card. Per request, card and platform the updates of this
   * process run one after another, and each shows the request as stored when it runs (never the
   * older state a notification carried); one that finds the request moved on while it was being
   * shown (another replica's update may have landed after it) shows it again.
   */
  private updateCards(p: ChatPlatform, scope: CardScope, r: AccessRequest, outcome?: 'approved' | 'denied'): Promise<void> {
    const key = `${p.name}:${scope}:${r.id}`;
    let chain = this.chains.get(key);
    if (!chain) this.chains.set(key, (chain = { tail: Promise.resolve(), queued: 0 }));
    const c = chain;
    c.queued++;
    const run = c.tail.then(() => this.showCards(p, scope, r.id, outcome, c));
    c.tail = run.catch(() => {}).then(() => {
      if (--c.queued === 0 && this.chains.get(key) === c) this.chains.delete(key);
    });
    return run;
  }

  private async showCards(p: ChatPlatform, scope: CardScope, id: string, outcome: 'approved' | 'denied' | undefined, chain: UpdateChain): Promise<void> {
    const ctx = this.use();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const copies = await this.deps.refs.list(p.name, scope, id);
      if (copies.length === 0) return;
      const fresh = await ctx.get(id);
      if (!fresh) return;
      // An extension card gets its outcome from the notification that decided it; a progress
      // update arriving after that decision must not take the outcome off again.
      if (scope === 'extension' && !outcome && !(fresh.status === 'active' && fresh.pendingExtension)) return;
      const shown = `${fresh.version}:${outcome ?? ''}`;
      if (chain.shown === shown) return;
      const card = await approvalCardOf(ctx, fresh, scope, undefined, outcome);
      await Promise.all(
        copies.map(async (copy) => {
          try {
            const view = copy.viewer ? await approvalCardOf(ctx, fresh, scope, copy.viewer, outcome) : card;
            await p.update(copy.ref, { kind: 'approval', card: view });
          } catch (err) {
            this.deps.log.warn(`${p.name}: card not updated`, { request: id, err });
          }
        }),
      );
      chain.shown = shown;
      // A later update queued here shows the newer state anyway.
      if (chain.queued > 1) return;
      const now = await ctx.get(id);
      if (!now || now.version === fresh.version) return;
    }
  }
}

const posting = (ref: string, to: Destination): PostedMessage => ({ ref, ...(to.kind === 'dm' ? { viewer: to.principal } : {}) });

function unreachable(kind: never): never {
  throw new Error(`unknown notification ${String(kind)}`);
}
