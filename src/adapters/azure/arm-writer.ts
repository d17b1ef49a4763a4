// The per-resource writer under the Azure gate: changes queue per NSG, firewall or firewall policy
// (ARM runs one operation per resource at a time), a Redis lock per resource across replicas,
// ETag read-modify-write of firewall documents with If-Match, retries with jittered backoff to the
// kind's deadline (Retry-After honoured), closes ahead of opens, and closes for an expiry held until
// one write before it. NSG writes themselves are nsg-writer.ts's (whole NSG, or child rules).
import type { Redis } from 'ioredis';
import type { AppliedRule } from '../../core/types.js';
import { ArmError, NETWORK_API, backoff, classify, type ArmClient, type ArmDoc } from './arm.js';
import { kindOf } from './discovery.js';
import { writableDoc, type DocPlan } from './firewall-dnat.js';
import type { WriteLatency } from './latency.js';
import type { WireRule } from './nsg-rules.js';
import { writeNsg } from './nsg-writer.js';

/** Writes to one firewall policy's rule collection groups take turns (ARM: one operation per policy). */
/** How long an idle queue waits for more of a burst before its first write (see gather). */
const GATHER_QUIET_MS = 40;
const GATHER_MAX_MS = 250;

export const queueKeyOf = (resourceId: string) => (kindOf(resourceId) === 'rcg' ? resourceId.replace(/\/ruleCollectionGroups\/[^/]+$/i, '') : resourceId).toLowerCase();

/** What one caller wants done to an NSG, planned from its current rules. */
export interface NsgPlan {
  results: AppliedRule[];
  puts: WireRule[];
  deletes: WireRule[];
}
export interface Pending<P> {
  plan: (doc: ArmDoc) => P;
  resolve: (applied: AppliedRule[]) => void;
  reject: (err: unknown) => void;
  /** Every rule this change touched, over all attempts (a retry after a lost answer finds its work done). */
  seen: Map<string, AppliedRule>;
  /** NSG rules whose delete was sent but not confirmed (a lost answer): removed if the next read lacks them. */
  intended: Map<string, AppliedRule>;
  settled: boolean;
  /** A close (a revocation, the reconciler's sweep): goes ahead of opens and expiry updates queued on the NSG. */
  urgent: boolean;
  /** The requests it is for: a close never goes ahead of a change queued earlier for the same request. */
  requests: string[];
  /** A close's grant expiry: closes are taken earliest first. */
  deadline: number;
  /** A close for an expiry, held until then so that its write completes just before the expiry. */
  notBefore?: number;
  /** When it was queued, and whether it made an ARM operation (then its time is a latency sample). */
  queuedAt: number;
  wrote: boolean;
}
export interface Queue {
  items: Array<{ resourceId: string; change: Pending<NsgPlan> | Pending<DocPlan> }>;
  running: boolean;
  /** Ends the drain's wait for a held close early (something new was queued). */
  kick?: () => void;
}

/** What a queued change is: a close (urgent, with its grant's expiry) or not, and for which requests. */
export interface ChangeTag {
  urgent?: boolean;
  requests?: string[];
  deadline?: number;
  /** A close held until then (see CloseTimes.holdUntil, close-timing.ts). */
  notBefore?: number;
}

export const LOCK_TTL_MS = 1500;

/**
 * Closes ahead of opens and expiry updates, earliest expiry first (in the order they came for the
 * same expiry): a close that started early because many others expire near it does not hold up
 * one due sooner. A close stays behind any change queued earlier for one of its requests (an open
 * of the grant it closes must land first, or the close would find nothing and the open would then
 * leave the rule behind).
 */
export function prioritize<C extends { urgent: boolean; requests: string[]; deadline: number }>(changes: C[]): C[] {
  const out: C[] = [];
  for (const c of changes) {
    if (!c.urgent) {
      out.push(c);
      continue;
    }
    let at = 0;
    out.forEach((o, i) => {
      if ((o.urgent && o.deadline <= c.deadline) || o.requests.some((r) => c.requests.includes(r))) at = i + 1;
    });
    out.splice(at, 0, c);
  }
  return out;
}

export const settled = (c: { settled: boolean }) => c.settled;

export interface ArmWriterDeps {
  arm: ArmClient;
  latency: WriteLatency;
  /** How long an NSG write retries without progress; firewalls and policies have their own. */
  nsgDeadlineMs: number;
  fwDeadlineMs: number;
  nsgWrites?: 'auto' | 'rules';
  /** How an idle queue gathers a burst before its first write (see gather); default 40 / 250 ms. */
  gather?: { quietMs: number; maxMs: number };
  redis?: Redis;
  lockPrefix?: string;
  sleep: (ms: number) => Promise<void>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** A resource now holds (or held) the bot's rules: the reconciler reads it between scope sweeps. */
  onWritten: (resourceId: string) => void;
  /** An NSG as read and written: the gate notes its rules' expiries (the close estimate). */
  onNsgRead: (nsgId: string, doc: ArmDoc) => void;
  /** The app's clock: held closes' times (AzureGateOptions.clock); retries and timings are real time. */
  now: () => number;
}

export class ArmWriter {
  private queues = new Map<string, Queue>();
  readonly arm: ArmClient;
  readonly latency: WriteLatency;

  constructor(readonly deps: ArmWriterDeps) {
    this.arm = deps.arm;
    this.latency = deps.latency;
  }

  /** How long to wait before a write's next try (counted and logged), or the error that ends it at its deadline. */
  nextTry(name: string, err: unknown, how: 'reread' | 'retry', attempt: number, deadline: number, deadlineMs: number): number | Error {
    const wait = how === 'reread' ? Math.random() * 50 : backoff(attempt, err instanceof ArmError ? err.retryAfterMs : undefined);
    const code = err instanceof ArmError ? err.code : undefined;
    if (Date.now() + wait > deadline) return new Error(`writing ${name} failed after ${attempt} attempts (${code ?? 'network error'}); deadline of ${Math.round(deadlineMs / 1000)} s reached`);
    this.arm.stats.retries++;
    this.deps.log('azure: write retried', { resource: name, code, waitMs: Math.round(wait) });
    return wait;
  }

  private deadlineOf(resourceId: string): number {
    return kindOf(resourceId) === 'nsg' ? this.deps.nsgDeadlineMs : this.deps.fwDeadlineMs;
  }

  enqueue(resourceId: string, plan: ((doc: ArmDoc) => NsgPlan) | ((doc: ArmDoc) => DocPlan), tag: ChangeTag = {}): Promise<AppliedRule[]> {
    const key = queueKeyOf(resourceId);
    let q = this.queues.get(key);
    if (!q) {
      q = { items: [], running: false };
      this.queues.set(key, q);
    }
    const queue = q;
    const promise = new Promise<AppliedRule[]>((resolve, reject) => {
      const change = {
        plan,
        seen: new Map<string, AppliedRule>(),
        intended: new Map<string, AppliedRule>(),
        settled: false,
        urgent: tag.urgent ?? false,
        requests: tag.requests ?? [],
        deadline: tag.deadline ?? Infinity,
        ...(tag.notBefore !== undefined ? { notBefore: tag.notBefore } : {}),
        queuedAt: Date.now(),
        wrote: false,
        resolve: (v: AppliedRule[]) => {
          // A write's time, queued to Succeeded, is a sample of what the next close will take.
          // (A held close's time is mostly its hold: not a sample.)
          if (!change.settled && change.wrote && change.notBefore === undefined) this.latency.record(key, change.urgent ? 'close' : 'write', Date.now() - change.queuedAt);
          change.settled = true;
          resolve(v);
        },
        reject: (e: unknown) => ((change.settled = true), reject(e)),
      };
      queue.items.push({ resourceId, change: change as Pending<NsgPlan> | Pending<DocPlan> });
      queue.kick?.();
    });
    if (!queue.running) void this.drain(key, queue);
    return promise;
  }

  private async drain(key: string, q: Queue): Promise<void> {
    q.running = true;
    try {
      await this.gather(q);
      while (q.items.length > 0) {
        const wait = this.holdFor(key, q);
        if (wait > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, wait);
            q.kick = () => (clearTimeout(timer), resolve());
          });
          q.kick = undefined;
          continue;
        }
        // Everything queued while the previous write ran goes into this batch (per resource: one
        // firewall policy's queue may hold several of its rule collection groups), but closes held
        // for later (their write due after this one would end).
        const now = this.deps.now();
        const horizon = now + (this.latency.opP90(key) ?? 0);
        const batch = q.items.filter((it) => !(it.change.notBefore !== undefined && it.change.notBefore > horizon));
        q.items = q.items.filter((it) => !batch.includes(it));
        const byResource = new Map<string, { resourceId: string; changes: Array<Pending<NsgPlan> | Pending<DocPlan>> }>();
        for (const it of batch) {
          const e = byResource.get(it.resourceId.toLowerCase()) ?? { resourceId: it.resourceId, changes: [] };
          e.changes.push(it.change);
          byResource.set(it.resourceId.toLowerCase(), e);
        }
        for (const { resourceId, changes } of byResource.values()) {
          try {
            if (kindOf(resourceId) === 'nsg') await writeNsg(this, resourceId, key, changes as Array<Pending<NsgPlan>>);
            else await this.writeDoc(resourceId, key, changes as Array<Pending<DocPlan>>);
          } catch (err) {
            for (const c of changes) c.reject(err);
          }
        }
      }
    } finally {
      q.running = false;
    }
  }

  /**
   * A queue that was idle waits for the rest of a burst before its first write (opens only, and
   * only where that write is one PUT for the batch: a whole NSG, a firewall or its policy): until
   * nothing new came for `quietMs` (40 ms), at most `maxMs` (250 ms). Twenty approvals arriving over a
   * few hundred milliseconds then open in one ARM write (~5 s) instead of two in a row, the first
   * with one grant and the second with the nineteen queued behind it. A close never waits here.
   */
  private async gather(q: Queue): Promise<void> {
    const batched = (it: Queue['items'][number]) => kindOf(it.resourceId) !== 'nsg' || this.nsgBatched(it.resourceId);
    const { quietMs, maxMs } = this.deps.gather ?? { quietMs: GATHER_QUIET_MS, maxMs: GATHER_MAX_MS };
    const started = Date.now();
    let seen = -1;
    while (q.items.length !== seen && Date.now() - started < maxMs && q.items.every((it) => !it.change.urgent && it.change.notBefore === undefined && batched(it))) {
      seen = q.items.length;
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
  }

  /** NSGs where ARM refused a whole-NSG write: written with child rules until `until`. */
  readonly childRulesUntil = new Map<string, { until: number; code: string }>();

  /** Whole-NSG writes ARM refused (each NSG then fell back to child rules), by ARM's code. */
  readonly nsgFallbacks: Record<string, number> = {};

  /** Whether this NSG's changes go as one whole-NSG PUT (JIT_NSG_WRITES=auto, not refused lately). */
  nsgBatched(nsgId: string): boolean {
    if ((this.deps.nsgWrites ?? 'auto') === 'rules') return false;
    const refused = this.childRulesUntil.get(nsgId.toLowerCase());
    if (!refused) return true;
    if (refused.until > this.deps.now()) return false;
    this.childRulesUntil.delete(nsgId.toLowerCase());
    return true;
  }

  /**
   * How long the queue waits before its next batch (ms), for closes held until one write before
   * their expiry: nothing else queued, until the first is due; opens and updates queued too, until
   * it is due if a write started now would still run then (they go in the close's write, a little
   * later, rather than make the close late); a close that is not held (a revocation) goes at once,
   * and takes the held closes due before its write would end with it.
   */
  private holdFor(key: string, q: Queue): number {
    const now = this.deps.now();
    let held = Infinity;
    let ready = false;
    let urgentReady = false;
    for (const { change: c } of q.items) {
      if (c.notBefore !== undefined && c.notBefore > now) held = Math.min(held, c.notBefore);
      else {
        ready = true;
        urgentReady ||= c.urgent;
      }
    }
    if (held === Infinity || urgentReady) return 0;
    if (!ready) return held - now;
    return held - now < (this.latency.opP90(key) ?? 0) ? held - now : 0;
  }

  /**
   * Closes queued for this NSG while its batch runs are taken out of the queue and put at `at` in
   * the batch (each behind any change queued earlier for the same request), so a revocation waits
   * for at most the operation in flight and the closes ahead of it, never for a burst of opens.
   */
  takeUrgent<P>(queueKey: string, resourceId: string, pending: Array<Pending<P>>, at: number): Array<Pending<P>> {
    const q = this.queues.get(queueKey);
    const id = resourceId.toLowerCase();
    if (!q || !q.items.some((it) => it.change.urgent && it.resourceId.toLowerCase() === id)) return pending;
    const taken: Array<Pending<P>> = [];
    // A close stays queued behind a change queued before it for the same request (it goes later).
    const held = new Set<string>();
    q.items = q.items.filter((it) => {
      const c = it.change;
      if (!c.urgent || (c.notBefore !== undefined && c.notBefore > this.deps.now()) || it.resourceId.toLowerCase() !== id || c.requests.some((r) => held.has(r))) {
        for (const r of c.requests) held.add(r);
        return true;
      }
      taken.push(c as Pending<P>);
      return false;
    });
    if (taken.length === 0) return pending;
    return [...pending.slice(0, at), ...prioritize([...pending.slice(at), ...taken])];
  }

  /** The bot's rule collection group; absent until the first grant creates it. */
  async readRcg(resourceId: string): Promise<{ doc: ArmDoc; etag?: string }> {
    const got = await this.arm.getOrNull(resourceId, NETWORK_API);
    return got ?? { doc: { properties: { priority: 65000, ruleCollections: [] } } };
  }

  /**
   * A Redis lock per resource so replicas take turns; released by token. It lives 1.5 s and is
   * renewed every 0.5 s while held, so a replica killed mid-write blocks the others for at most
   * 1.5 s. Correctness does not rest on it (conflicting writes are refused by ARM and re-read): it
   * only spares ARM a storm of 409s / 412s. No Redis: in-process only.
   */
  async lock(key: string, deadline: number): Promise<() => Promise<void>> {
    const redis = this.deps.redis;
    if (!redis) return async () => {};
    const rkey = `${this.deps.lockPrefix ?? 'jit'}:azure:lock:${key}`;
    const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (;;) {
      if ((await redis.set(rkey, token, 'PX', LOCK_TTL_MS, 'NX')) === 'OK') break;
      if (Date.now() > deadline) throw new Error(`could not get the write lock for ${key.split('/').pop()} before the deadline`);
      await this.deps.sleep(20 + Math.random() * 30);
    }
    const renew = setInterval(() => {
      void redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end", 1, rkey, token, LOCK_TTL_MS).catch(() => 0);
    }, LOCK_TTL_MS / 3);
    renew.unref();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      await redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, rkey, token).catch(() => 0);
    };
  }

  /**
   * One read-modify-write of a firewall or rule collection group for a batch of changes, with
   * If-Match, followed to Succeeded. An update already in flight (ours from another replica, or
   * anyone's) is waited for first: firewall updates take minutes.
   */
  private async writeDoc(resourceId: string, lockKey: string, changes: Array<Pending<DocPlan>>): Promise<void> {
    const name = resourceId.split('/').pop()!;
    const deadlineMs = this.deadlineOf(resourceId);
    const deadline = Date.now() + deadlineMs;
    let pending = changes;
    for (let attempt = 1; ; attempt++) {
      const release = await this.lock(lockKey, deadline);
      try {
        let got = kindOf(resourceId) === 'rcg' ? await this.readRcg(resourceId) : await this.arm.getOrNull(resourceId, NETWORK_API);
        if (!got) throw new ArmError(`${name}: not found`, 'ResourceNotFound', 404);
        // Queue behind an update in flight rather than meet a 409.
        while (/^(updating|creating|deleting|accepted)$/i.test(String(got.doc.properties?.provisioningState ?? ''))) {
          if (Date.now() + this.arm.pollMs > deadline) throw new Error(`${name} stayed busy (provisioningState ${String(got.doc.properties?.provisioningState)}) until the deadline`);
          await this.deps.sleep(this.arm.pollMs);
          got = kindOf(resourceId) === 'rcg' ? await this.readRcg(resourceId) : await this.arm.getOrNull(resourceId, NETWORK_API);
          if (!got) throw new ArmError(`${name}: not found`, 'ResourceNotFound', 404);
        }
        const { doc, etag } = got;
        let changed = false;
        const outcome = new Map<Pending<DocPlan>, unknown>();
        const changers = new Set<Pending<DocPlan>>();
        for (const c of pending) {
          try {
            const r = c.plan(doc);
            changed ||= r.changed;
            if (r.changed) changers.add(c);
            for (const a of r.results) c.seen.set(a.name, a);
          } catch (error) {
            outcome.set(c, error);
          }
        }
        if (changed) {
          const sent = Date.now();
          await this.arm.put(resourceId, NETWORK_API, writableDoc(resourceId, doc), etag ? { ifMatch: etag } : { ifNoneMatch: '*' }, deadline);
          this.latency.record(lockKey, 'op', Date.now() - sent);
          this.deps.onWritten(resourceId);
          for (const c of changers) c.wrote = true;
        }
        for (const c of pending) {
          if (outcome.has(c)) c.reject(outcome.get(c));
          else c.resolve([...c.seen.values()]);
        }
        return;
      } catch (err) {
        const how = classify(err);
        if (how === 'fatal') throw err;
        const next = this.nextTry(name, err, how, attempt, deadline, deadlineMs);
        if (next instanceof Error) throw next;
        pending = pending.filter((c) => !settled(c));
        await release();
        await this.deps.sleep(next);
      } finally {
        await release();
      }
    }
  }
}
