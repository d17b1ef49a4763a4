// The embedded default NetworkGate: NSG-like security rules kept in a JSON file, with the same
// shape and constraints as Azure's (unique priority per NSG and direction, 100–4096, rule names
// unique per NSG), written atomically (temp file + rename, one write per batch of changes) and
// all-or-nothing per grant.
import { mkdir, open as openFile, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { GrantSpec, NetworkGate } from '../../app/ports.js';
import type { AppliedRule, Target } from '../../core/types.js';

export interface SimulatedGateOptions {
  file: string;
  /** Priorities the bot may use (Azure allows 100–4096; keep room for your own rules). */
  priorityRange?: [number, number];
  /** Added to every write, to imitate a cloud's latency in demos. */
  latencyMs?: number;
}

interface FileShape {
  version: 1;
  /** NSG id → its rules. */
  nsgs: Record<string, AppliedRule[]>;
}

/** Where a target's rules live: the NSG `<vm>-nsg` in the VM's resource group (Azure's JIT default naming). */
export function nsgIdFor(target: Target): string {
  const rg = target.id.split('/providers/')[0] ?? target.id;
  return `${rg}/providers/Microsoft.Network/networkSecurityGroups/${target.name}-nsg`;
}

// The rule tags live in core (every network writes them); re-exported for this adapter's users.
export { parseRuleDescription, ruleDescription, ruleName } from '../../core/rule-tags.js';
import { ruleDescription, ruleName } from '../../core/rule-tags.js';

const FILE_START = Buffer.from('{"version": 1, "nsgs": {');
const FILE_END = Buffer.from('\n}}\n');
const COMMA = Buffer.from(',');
const LIST_END = Buffer.from(']');

interface PendingOp {
  fn: () => { next: Record<string, AppliedRule[]> | null; result: unknown };
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

export class SimulatedGate implements NetworkGate {
  private state: FileShape;
  private pending: PendingOp[] = [];
  private flushing: Promise<void> | null = null;

  private constructor(
    private readonly file: string,
    state: FileShape,
    private readonly range: [number, number],
    private readonly latencyMs: number,
  ) {
    this.state = state;
  }

  static async open(opts: SimulatedGateOptions): Promise<SimulatedGate> {
    const range = opts.priorityRange ?? [100, 4096];
    if (!(range[0] >= 100 && range[1] <= 4096 && range[0] <= range[1])) {
      throw new Error(`priority range ${range.join('-')} must lie within 100-4096`);
    }
    let state: FileShape = { version: 1, nsgs: {} };
    try {
      const parsed = JSON.parse(await readFile(opts.file, 'utf8')) as Partial<FileShape>;
      if (parsed.version !== 1 || typeof parsed.nsgs !== 'object' || parsed.nsgs === null) {
        throw new Error(`${opts.file} is not a simulated network file (version 1)`);
      }
      state = { version: 1, nsgs: parsed.nsgs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new SimulatedGate(opts.file, state, range, opts.latencyMs ?? 0);
  }

  open(grant: GrantSpec): Promise<AppliedRule[]> {
    return this.mutate(() => {
      if (!grant.sourcePrefix) throw new Error(`grant ${grant.requestId} has no source prefix`);
      const scope = nsgIdFor(grant.target);
      const rules = [...(this.state.nsgs[scope] ?? [])];
      const used = new Set(rules.map((r) => r.priority));
      const written: AppliedRule[] = [];
      for (const p of grant.ports) {
        const name = ruleName(grant.requestId, p.port, p.protocol);
        const existing = rules.find((r) => r.name === name);
        if (existing) {
          written.push(existing); // idempotent: a retried open finds its rule
          continue;
        }
        const priority = this.freePriority(used);
        if (priority === null) {
          throw new Error(`no free priority in ${this.range.join('-')} on ${scope}: the NSG is full`);
        }
        used.add(priority);
        const rule: AppliedRule = {
          name,
          scope,
          priority,
          direction: 'Inbound',
          access: 'Allow',
          protocol: p.protocol,
          sourcePrefix: grant.sourcePrefix,
          destinationPort: p.port,
          description: ruleDescription(grant.requestId, grant.expiresAt),
          requestId: grant.requestId,
          expiresAt: grant.expiresAt,
        };
        rules.push(rule);
        written.push(rule);
      }
      // All or nothing: the new list replaces the old only when every rule fitted.
      return { next: { ...this.state.nsgs, [scope]: rules }, result: written };
    });
  }

  close(requestId: string, target: Target, written: AppliedRule[] = []): Promise<AppliedRule[]> {
    return this.mutate(() => {
      // Where the rules were written, and where the target's rules live now.
      const next = { ...this.state.nsgs };
      const gone: AppliedRule[] = [];
      for (const scope of new Set([nsgIdFor(target), ...written.map((r) => r.scope)])) {
        const rules = next[scope] ?? [];
        if (!rules.some((r) => r.requestId === requestId)) continue;
        gone.push(...rules.filter((r) => r.requestId === requestId));
        next[scope] = rules.filter((r) => r.requestId !== requestId);
      }
      return gone.length === 0 ? { next: null, result: [] } : { next, result: gone };
    });
  }

  remove(toRemove: AppliedRule[]): Promise<AppliedRule[]> {
    return this.mutate(() => {
      const next = { ...this.state.nsgs };
      const gone: AppliedRule[] = [];
      for (const want of toRemove) {
        const rules = next[want.scope] ?? [];
        const hit = rules.find((r) => r.name === want.name);
        if (!hit) continue;
        gone.push(hit);
        next[want.scope] = rules.filter((r) => r !== hit);
      }
      return { next: gone.length > 0 ? next : null, result: gone };
    });
  }

  async list(): Promise<AppliedRule[]> {
    await this.flushing;
    return Object.values(this.state.nsgs)
      .flat()
      .sort((a, b) => a.scope.localeCompare(b.scope) || a.priority - b.priority);
  }

  updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<void> {
    return this.mutate(() => {
      const scope = nsgIdFor(target);
      const rules = this.state.nsgs[scope] ?? [];
      if (!rules.some((r) => r.requestId === requestId)) return { next: null, result: undefined };
      const updated = rules.map((r) =>
        r.requestId === requestId ? { ...r, expiresAt, description: ruleDescription(requestId, expiresAt) } : r,
      );
      return { next: { ...this.state.nsgs, [scope]: updated }, result: undefined };
    });
  }

  /** A local file write closes at once (or after `latencyMs`, a demo's fixed delay): no lead is needed. */
  closeLeadMs(): number {
    return 0;
  }

  private freePriority(used: Set<number>): number | null {
    for (let p = this.range[0]; p <= this.range[1]; p++) if (!used.has(p)) return p;
    return null;
  }

  /**
   * Mutations are applied one after another, in order, each to the result of the previous; a
   * batch of them is persisted with one write (tmp + rename: group commit), and each caller is
   * answered only after the write that holds its change. A mutation that throws changes nothing.
   */
  private mutate<T>(fn: () => { next: Record<string, AppliedRule[]> | null; result: T }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushing) this.flushing = this.flush();
    });
  }

  private async flush(): Promise<void> {
    // Yield first: `mutate` must have stored this promise in `flushing` before the loop can end and
    // clear it. (Without this, a batch that changes nothing finished synchronously, `flushing` was
    // cleared before it was set, then set to a settled promise: every later change waited forever.
    // Found by the crash harness: an expiry job closing a grant that never opened.)
    await Promise.resolve();
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      const before = this.state;
      let working = before;
      const done: { op: PendingOp; result: unknown }[] = [];
      for (const op of batch) {
        const saved = this.state;
        this.state = working; // each mutation sees the previous one's result
        try {
          const { next, result } = op.fn();
          if (next) {
            for (const [k, v] of Object.entries(next)) if (v.length === 0) delete next[k];
            working = { version: 1, nsgs: next };
          }
          done.push({ op, result });
        } catch (err) {
          op.reject(err);
        } finally {
          this.state = saved;
        }
      }
      try {
        if (working !== before) await this.persist(working);
        this.state = working;
        for (const { op, result } of done) op.resolve(result);
      } catch (err) {
        for (const { op } of done) op.reject(err);
      }
    }
    this.flushing = null;
  }

  /**
   * Writes the file (tmp + rename). Each rule is serialised once (rules are never changed in place:
   * mutations replace them) and the file is written from those bytes side by side (writev), so a
   * write allocates nothing in proportion to the network: with 10,000 rules on 10 NSGs,
   * re-serialising whole NSGs was half the CPU of an expiry burst, and building the whole file as
   * one string (then one buffer) per write grew the server's RSS by ~40 MiB under load (see
   * docs/benchmarks.md). The file's bytes are what JSON.stringify gives for each NSG's list.
   */
  private async persist(state: FileShape): Promise<void> {
    if (!this.dirReady) {
      await mkdir(dirname(this.file), { recursive: true });
      this.dirReady = true;
    }
    const chunks: Buffer[] = [FILE_START];
    Object.entries(state.nsgs).forEach(([scope, rules], i) => {
      chunks.push(Buffer.from(`${i > 0 ? ',' : ''}\n ${JSON.stringify(scope)}: [`));
      rules.forEach((rule, j) => {
        let bytes = this.ruleBytes.get(rule);
        if (bytes === undefined) {
          // Its own memory, not a slice of Buffer's shared 8 KB pool: a long-lived slice keeps its
          // whole pool chunk alive (10,000 rules held ~25 MB of chunks that way).
          const json = JSON.stringify(rule);
          bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
          bytes.write(json);
          this.ruleBytes.set(rule, bytes);
        }
        if (j > 0) chunks.push(COMMA);
        chunks.push(bytes);
      });
      chunks.push(LIST_END);
    });
    chunks.push(FILE_END);
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await openFile(tmp, 'w');
    try {
      await fh.writev(chunks);
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }

  private ruleBytes = new WeakMap<AppliedRule, Buffer>();
  private dirReady = false;
}
