// The reconciler's wide read: every NSG, Azure Firewall and firewall policy rule collection group
// of the resource groups the bot's role reaches, and the bot's own rules in each document.
import type { AppliedRule } from '../../core/types.js';
import { RESOURCES_API, NETWORK_API, type ArmClient, type ArmDoc } from './arm.js';
import { kindOf } from './discovery.js';
import { dnatApplied, dnatCollection } from './firewall-dnat.js';
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
