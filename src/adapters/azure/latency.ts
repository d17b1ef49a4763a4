// How long the Azure gate's writes take, per resource it writes (an NSG, a classic firewall, a
// firewall policy), measured from its own writes: from the moment a change is queued to the moment
// ARM reports its operation Succeeded. That is what a close costs (its wait behind the writes
// already queued for that NSG, the lock, the read, the DELETE and the operation until Succeeded),
// and what the service starts a revocation ahead of the expiry by (NetworkGate.closeLeadMs).
//
// The estimate is a high percentile (p90) of the most recent samples: a moving estimate that
// follows ARM's latency as it drifts, and covers the occasional wait behind another write without
// being pulled up for good by one outlier (a throttled write, a deadline's worth of retries).
// Closes are measured apart from opens and expiry updates: closes jump the queue (see the gate's
// writer), so they wait less; until a resource has a few close samples, all its writes count.

/** Samples kept per resource and kind. */
const WINDOW = 20;
/** Close samples a resource needs before they alone make its estimate. */
const MIN_CLOSE_SAMPLES = 3;
const PERCENTILE = 0.9;

type Kind = 'close' | 'write';

/** The `p` quantile (nearest rank) of the values. */
export function quantile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? 0;
}

export class WriteLatency {
  private readonly samples = new Map<string, { close: number[]; write: number[] }>();

  /** One change to `key`'s resource took `ms` from queued to Succeeded. */
  record(key: string, kind: Kind, ms: number): void {
    let s = this.samples.get(key);
    if (!s) {
      s = { close: [], write: [] };
      this.samples.set(key, s);
    }
    const list = s[kind];
    list.push(Math.max(0, ms));
    if (list.length > WINDOW) list.shift();
  }

  /** The close time expected on one resource (ms), or undefined without samples. */
  estimate(key: string): number | undefined {
    const s = this.samples.get(key);
    if (!s) return undefined;
    const pool = s.close.length >= MIN_CLOSE_SAMPLES ? s.close : [...s.close, ...s.write];
    return pool.length ? Math.round(quantile(pool, PERCENTILE)) : undefined;
  }

  /**
   * The close time expected for rules on these resources: they close side by side, so the slowest
   * counts. A resource without samples of its own takes the highest estimate among those of its kind
   * (`kindOf`); none at all: 0 (the revocation starts at the expiry).
   */
  lead(keys: string[], kindOf: (key: string) => string): number {
    let lead = 0;
    for (const key of new Set(keys)) {
      let e = this.estimate(key);
      if (e === undefined) {
        const kind = kindOf(key);
        for (const other of this.samples.keys()) if (kindOf(other) === kind) e = Math.max(e ?? 0, this.estimate(other) ?? 0);
      }
      lead = Math.max(lead, e ?? 0);
    }
    return lead;
  }

  /** Every resource's current estimate (for logs and benchmarks). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const key of this.samples.keys()) out[key] = this.estimate(key) ?? 0;
    return out;
  }
}
