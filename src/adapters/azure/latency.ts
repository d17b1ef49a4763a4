// How long the Azure gate's writes take, per resource it writes (an NSG, a classic firewall, a
// firewall policy), measured from its own writes, and from that how long before a grant's expiry
// its close must start to be done by then (NetworkGate.closeLeadMs).
//
// Two measures, each kept as the most recent samples per resource:
// - one ARM operation: the PUT or DELETE sent until ARM reports it Succeeded;
// - one change: queued in the gate until Succeeded (the wait behind changes ahead of it, the
//   lock shared with other replicas, the read, its operations). Closes are kept apart from opens
//   and expiry updates: closes go ahead of those in the queue (see the gate's writer), so they wait less.
// A close of k rules on an NSG costs k operations, and may arrive while another operation runs
// there (one NSG runs one operation at a time): (k + 1) operations; and the closes of other grants
// on that NSG that expire shortly before this one start about when it does and are queued ahead
// of it: one operation per rule each (`ahead`, from the rules the gate last saw on the NSG, with
// the expiries their descriptions carry). A firewall or firewall policy takes one document write
// for any number of rules and of queued closes: 2 writes. The estimate for a resource is the
// larger of that and what closes there took lately, each the p90 of its samples: a moving
// estimate that follows ARM's latency as it drifts, without being pulled up for good by one
// outlier (a throttled write, a deadline's worth of retries).
//
// An NSG written whole (JIT_NSG_WRITES=auto) takes ONE write for every change queued there, however
// many grants expire together: its close takes its own write and at most one already in flight,
// 2 x the p90 of its writes (read to Succeeded), and the gate holds the close's write until about
// one write before the expiry (AzureGate: `holdMs`), so it is done just before, not a write early.

/** Samples kept per resource and kind. */
const WINDOW = 20;
/** Close samples a resource needs before they alone stand for its closes (else all its changes count). */
const MIN_CLOSE_SAMPLES = 3;
const PERCENTILE = 0.9;

export type SampleKind = 'op' | 'close' | 'write';

/** The `p` quantile (nearest rank) of the values; 0 for none. */
export function quantile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? 0;
}

export class WriteLatency {
  private readonly samples = new Map<string, Record<SampleKind, number[]>>();

  /** A sample for `key`'s resource: one ARM operation, or one change queued to Succeeded. */
  record(key: string, kind: SampleKind, ms: number): void {
    let s = this.samples.get(key);
    if (!s) {
      s = { op: [], close: [], write: [] };
      this.samples.set(key, s);
    }
    const list = s[kind];
    list.push(Math.max(0, ms));
    if (list.length > WINDOW) list.shift();
  }

  /**
   * How long closing `ops` operations' worth of rules on one resource is expected to take (ms);
   * undefined without samples. `ahead(lead)`: the operations of other closes due within `lead`
   * before this one's expiry (queued ahead of it).
   */
  estimate(key: string, ops = 1, ahead?: (leadMs: number) => number): number | undefined {
    const s = this.samples.get(key);
    if (!s) return undefined;
    const changes = s.close.length >= MIN_CLOSE_SAMPLES ? s.close : [...s.close, ...s.write];
    if (s.op.length === 0 && changes.length === 0) return undefined;
    const op = s.op.length ? quantile(s.op, PERCENTILE) : 0;
    let lead = Math.max(op * (ops + 1), changes.length ? quantile(changes, PERCENTILE) : 0);
    // A longer lead reaches further back for closes due before this one: a few rounds settle it.
    for (let round = 0; op > 0 && ahead && round < 8; round++) {
      const next = Math.max(lead, op * (ops + 1 + ahead(lead)));
      if (next === lead) break;
      lead = next;
    }
    return Math.round(lead);
  }

  /** The p90 of one ARM operation on `key`'s resource (ms); undefined without samples. */
  opP90(key: string): number | undefined {
    const op = this.samples.get(key)?.op;
    return op?.length ? quantile(op, PERCENTILE) : undefined;
  }

  /**
   * The close time expected for rules on these resources (`ops`: the operations a close makes on
   * each): they close side by side, so the slowest counts. A resource without samples of its own
   * takes the highest estimate among those of its kind (`kindOf`); none at all: 0.
   */
  lead(resources: Array<{ key: string; ops: number; ahead?: (leadMs: number) => number; batched?: boolean }>, kindOf: (key: string) => string): number {
    let lead = 0;
    for (const { key, ops, ahead, batched } of resources) {
      // Written whole: its own write and one in flight, whatever else closes with it.
      const one = (k: string) => (batched ? mapOp(this.opP90(k), (op) => 2 * op) : this.estimate(k, ops, ahead));
      let e = one(key);
      if (e === undefined) {
        const kind = kindOf(key);
        for (const other of this.samples.keys()) if (kindOf(other) === kind) e = Math.max(e ?? 0, one(other) ?? 0);
      }
      lead = Math.max(lead, e ?? 0);
    }
    return lead;
  }

  /** Every resource's current estimate for a one-rule close (logs, benchmarks). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const key of this.samples.keys()) out[key] = this.estimate(key) ?? 0;
    return out;
  }
}

const mapOp = (v: number | undefined, f: (v: number) => number): number | undefined => (v === undefined ? undefined : Math.round(f(v)));
