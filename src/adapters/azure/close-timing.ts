// When the AzureGate's closes are written, and how long they are expected to take: the bot's
// rules last seen on each NSG (their expiries, by request), the hold of a close on an NSG written
// whole until one write before its expiry, and the close lead (closeLeadMs) from recent writes.
import type { CloseTiming } from '../../app/ports.js';
import type { AppliedRule } from '../../core/types.js';
import type { ArmDoc } from './arm.js';
import { queueKeyOf } from './arm-writer.js';
import { kindOf } from './discovery.js';
import type { WriteLatency } from './latency.js';
import { nsgApplied, nsgRulesOf } from './nsg-rules.js';

/** A held close's write aims to complete at least this much before its expiry (the caller's margin if more: the audit commit after it, a write a little slower than its p90). */
const HOLD_SLACK_MS = 500;
/** A close is never held longer than this (JIT_CLOSE_LEAD_MAX's ceiling). */
const HOLD_MAX_MS = 10 * 60_000;

export class CloseTimes {
  constructor(
    private readonly deps: {
      latency: WriteLatency;
      /** Whether this NSG's changes go as one whole-NSG PUT. */
      nsgBatched: (nsgId: string) => boolean;
      now: () => number;
    },
  ) {}

  /** Per NSG, the bot's rules on it by request (their expiry, how many), as this gate last read or wrote it. */
  private readonly ruleExpiries = new Map<string, Map<string, { expiresAt: number; rules: number }>>();

  /** The expiry of `requestId`'s rules last seen on this resource, if any. */
  expiryOf(resourceId: string, requestId: string): number | undefined {
    return this.ruleExpiries.get(resourceId.toLowerCase())?.get(requestId)?.expiresAt;
  }

  /**
   * When a close for an expiry at `by` may start its write on this NSG: one write (its p90, read to
   * Succeeded) and the margin (at least HOLD_SLACK_MS) before `by`, so it completes just before the expiry rather than a
   * close lead early. Only for NSGs written whole (one write for every change queued: the hold
   * aligns the NSG's writes with it) and only within HOLD_MAX_MS; undefined: at once.
   */
  holdUntil(resourceId: string, when: CloseTiming | undefined): number | undefined {
    if (when === undefined || kindOf(resourceId) !== 'nsg' || !this.deps.nsgBatched(resourceId)) return undefined;
    const op = this.deps.latency.opP90(queueKeyOf(resourceId));
    if (op === undefined) return undefined;
    const at = when.by - op - Math.max(HOLD_SLACK_MS, when.marginMs ?? 0);
    const now = this.deps.now();
    return at > now && at - now <= HOLD_MAX_MS ? at : undefined;
  }

  /**
   * How long closing these rules (of a grant expiring at `expiresAt`) is expected to take (ms),
   * from this gate's recent writes to their resources: the slowest resource counts
   * (src/adapters/azure/latency.ts). An NSG written whole takes one write for all the closes due
   * there, behind at most one in flight (and close() then holds that write until one write before
   * the expiry); an NSG with child rules deletes each rule in an operation of its own, after the
   * closes of other grants on it that expire shortly before (from the rules last seen there); a
   * firewall document takes one write for all.
   */
  closeLeadMs(rules: AppliedRule[], expiresAt: number): number {
    const own = rules[0]?.requestId;
    const resources = new Map<string, { key: string; ops: number; ahead?: (leadMs: number) => number; batched: boolean }>();
    for (const r of rules) {
      const id = r.scope.toLowerCase();
      const nsg = kindOf(r.scope) === 'nsg';
      const seen = this.ruleExpiries.get(id);
      const ahead = (lead: number) => {
        let ops = 0;
        for (const [requestId, e] of seen ?? []) if (requestId !== own && e.expiresAt >= expiresAt - lead && e.expiresAt <= expiresAt) ops += e.rules;
        return ops;
      };
      const cur = resources.get(id);
      const batched = nsg && this.deps.nsgBatched(r.scope);
      resources.set(id, { key: queueKeyOf(r.scope), ops: nsg ? (cur?.ops ?? 0) + 1 : 1, ...(nsg && !batched ? { ahead } : {}), batched });
    }
    return this.deps.latency.lead([...resources.values()], (key) => (/\/networksecuritygroups\//.test(key) ? 'nsg' : 'firewall'));
  }

  noteRules(nsgId: string, doc: ArmDoc): void {
    const byRequest = new Map<string, { expiresAt: number; rules: number }>();
    for (const r of nsgRulesOf(doc)) {
      const a = nsgApplied(nsgId, r);
      if (!a) continue;
      const e = byRequest.get(a.requestId);
      byRequest.set(a.requestId, { expiresAt: Math.min(e?.expiresAt ?? Infinity, a.expiresAt), rules: (e?.rules ?? 0) + 1 });
    }
    this.ruleExpiries.set(nsgId.toLowerCase(), byRequest);
  }
}
