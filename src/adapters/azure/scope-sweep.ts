// The reconciler's reads: the wide one (every NSG, Azure Firewall and firewall policy rule
// collection group of the resource groups the bot's role reaches, now and then), the narrow one in
// between (the live targets' resources and those known to hold the bot's rules), and the bot's own
// rules in each document.
import type { AppliedRule, Target } from '../../core/types.js';
import { ArmError, RESOURCES_API, NETWORK_API, type ArmClient, type ArmDoc } from './arm.js';
import { UnsupportedTargetError, kindOf } from './discovery.js';
import { dnatApplied, dnatCollection, dnatResourceOf } from './firewall-dnat.js';
import { nsgApplied, nsgRulesOf } from './nsg-rules.js';

/**
 * Lists, per subscription, the resource groups the identity can see (its role's scopes) and in
 * each every NSG, Azure Firewall and firewall policy's rule collection groups.
 */
export async function sweepScopes(arm: ArmClient, subs: Set<string>, fail: (what: string, err: unknown) => void): Promise<Map<string, { id: string; doc: ArmDoc }>> {
  const found = new Map<string, { id: string; doc: ArmDoc }>();
  const add = (docs: ArmDoc[]) => {
    for (const d of docs) if (typeof d.id === 'string') found.set(d.id.toLowerCase(), { id: d.id, doc: d });
  };
  await Promise.all(
    [...subs].map(async (sub) => {
      let groups: ArmDoc[];
      try {
        groups = await arm.list(`/subscriptions/${sub}/resourcegroups`, RESOURCES_API);
      } catch (err) {
        return fail(`resource groups of ${sub}`, err);
      }
      await Promise.all(
        groups.map(async (g) => {
          const rg = String(g.id ?? `/subscriptions/${sub}/resourceGroups/${String(g.name)}`);
          const net = `${rg}/providers/Microsoft.Network`;
          await Promise.all([
            arm.list(`${net}/networkSecurityGroups`, NETWORK_API).then(add, (err: unknown) => fail(`NSGs of ${rg}`, err)),
            arm.list(`${net}/azureFirewalls`, NETWORK_API).then(add, (err: unknown) => fail(`firewalls of ${rg}`, err)),
            arm.list(`${net}/firewallPolicies`, NETWORK_API).then(
              async (policies) => {
                await Promise.all(
                  policies.filter((p) => typeof p.id === 'string').map((p) => arm.list(`${String(p.id)}/ruleCollectionGroups`, NETWORK_API).then(add, (err: unknown) => fail(`rule collection groups of ${String(p.name)}`, err))),
                );
              },
              (err: unknown) => fail(`firewall policies of ${rg}`, err),
            ),
          ]);
        }),
      );
    }),
  );
  return found;
}

/** The bot's rules in an NSG or firewall document. */
export function ownedRules(resId: string, doc: ArmDoc): AppliedRule[] {
  if (kindOf(resId) === 'nsg') return nsgRulesOf(doc).flatMap((r) => nsgApplied(resId, r) ?? []);
  const c = dnatCollection(resId, structuredClone(doc), false);
  return (c?.rules ?? []).flatMap((r) => dnatApplied(resId, r, c?.priority ?? 0) ?? []);
}

/** The AzureGate's list(): what the reconciler reads, and the resources known to hold the bot's rules. */
export class RuleSweep {
  /** Resources where the bot's rules were written or seen (swept between full scope sweeps). */
  private known = new Map<string, string>();
  private lastScopeSweep = 0;

  constructor(
    private readonly deps: {
      arm: ArmClient;
      /** The targets of the policy. */
      targets: () => Target[];
      /** The resources on a target's path (its NSGs, its firewall's DNAT document). */
      resourcesOf: (target: Target) => Promise<string[]>;
      subscriptions: () => Set<string>;
      readRcg: (id: string) => Promise<{ doc: ArmDoc } | null>;
      /** An NSG's document as read (the close timing's rules last seen). */
      noteRules: (nsgId: string, doc: ArmDoc) => void;
      now: () => number;
      scopeSweepIntervalMs?: number;
      log: (msg: string, fields?: Record<string, unknown>) => void;
    },
  ) {}

  /** The bot wrote rules on this resource. */
  written(id: string): void {
    this.known.set(id.toLowerCase(), id);
  }

  /**
   * Every rule the bot owns that it can read. Resources are read one by one and settle on their
   * own: one that cannot be read (throttled, forbidden) is logged and skipped, not the whole sweep.
   */
  async list(): Promise<AppliedRule[]> {
    const docs = new Map<string, { id: string; doc: ArmDoc }>();
    const toRead = new Map<string, string>();
    let failures = 0;
    let firstError: unknown;
    const fail = (what: string, err: unknown) => {
      failures++;
      firstError ??= err;
      this.deps.log('azure: could not read for the reconciler; the next sweep retries', { what, err: err instanceof Error ? err.message : String(err) });
    };
    // The live targets' paths and firewalls.
    await Promise.all(
      this.deps.targets().map(async (t) => {
        if (t.firewall) toRead.set(dnatResourceOf(t.firewall).toLowerCase(), dnatResourceOf(t.firewall));
        try {
          for (const r of await this.deps.resourcesOf(t)) toRead.set(r.toLowerCase(), r);
        } catch (err) {
          if (!(err instanceof UnsupportedTargetError) && !(err instanceof ArmError && err.status === 404)) fail(`discovery of ${t.name}`, err);
        }
      }),
    );
    for (const [k, id] of this.known) toRead.set(k, id);
    // Every NSG, firewall and firewall policy of the managed scopes, now and then.
    const interval = this.deps.scopeSweepIntervalMs ?? 5 * 60_000;
    if (this.deps.now() - this.lastScopeSweep >= interval) {
      const swept = await sweepScopes(this.deps.arm, this.deps.subscriptions(), fail);
      for (const [k, v] of swept) docs.set(k, v);
      this.lastScopeSweep = this.deps.now();
    }
    await Promise.all(
      [...toRead].filter(([k]) => !docs.has(k)).map(async ([k, id]) => {
        try {
          const got = kindOf(id) === 'rcg' ? await this.deps.readRcg(id) : await this.deps.arm.getOrNull(id, NETWORK_API);
          if (got) docs.set(k, { id, doc: got.doc });
          else this.known.delete(k);
        } catch (err) {
          fail(id.split('/').pop()!, err);
        }
      }),
    );
    // Nothing readable at all (ARM down, the role missing): the sweep fails and says so.
    if (failures > 0 && docs.size === 0) throw firstError;
    const out: AppliedRule[] = [];
    for (const [k, { id, doc }] of docs) {
      if (kindOf(id) === 'nsg') this.deps.noteRules(id, doc);
      const owned = ownedRules(id, doc);
      if (owned.length > 0) this.known.set(k, id);
      else this.known.delete(k);
      out.push(...owned);
    }
    return out;
  }
}
