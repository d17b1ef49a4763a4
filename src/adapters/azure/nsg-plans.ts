// What a change does to an NSG, planned from the NSG as read (and as earlier changes of the same
// batch left it): the rules to PUT and DELETE, and what to report. Pure: the writer sends them
// (nsg-writer.ts), as one whole-NSG PUT or as child-rule operations.
import { parseRuleDescription } from '../../core/rule-tags.js';
import type { AppliedRule, PortSpec } from '../../core/types.js';
import type { ArmDoc } from './arm.js';
import type { NsgPlan } from './arm-writer.js';
import { NoFreePriorityError, armProtocol, checkNsgLimits, covers, denies, denyApplied, denyDescription, denyRuleName, nsgApplied, nsgRulesOf, type WireRule } from './nsg-rules.js';

/** A grant's Allow rules, each at the lowest free priority of `range`; idempotent by name. */
export function addNsgRules(nsgId: string, doc: ArmDoc, wanted: WireRule[], range: [number, number]): NsgPlan {
  const rules = nsgRulesOf(doc);
  const used = new Set(rules.filter((r) => (r.properties.direction ?? 'Inbound') === 'Inbound').map((r) => r.properties.priority));
  const puts: WireRule[] = [];
  const results: AppliedRule[] = [];
  for (const want of wanted) {
    const existing = rules.find((r) => r.name === want.name);
    // Idempotent by name: a retried open finds its rule there. One whose operation failed is written again.
    if (existing && !/^failed$/i.test(existing.properties.provisioningState ?? '')) {
      results.push(nsgApplied(nsgId, existing)!);
      continue;
    }
    let priority = existing?.properties.priority ?? range[0];
    if (!existing) {
      while (used.has(priority) && priority <= range[1]) priority++;
      if (priority > range[1]) throw new NoFreePriorityError(nsgId, range);
      used.add(priority);
    }
    const rule: WireRule = { name: want.name, properties: { ...want.properties, priority } };
    puts.push(rule);
    if (!existing) rules.push(rule);
    results.push(nsgApplied(nsgId, rule)!);
  }
  checkNsgLimits(nsgId, rules);
  return { results, puts, deletes: [] };
}

/** The bot's rules that `match` selects, deleted. */
export function removeNsgRules(nsgId: string, doc: ArmDoc, match: (r: WireRule) => boolean): NsgPlan {
  const deletes: WireRule[] = [];
  const results: AppliedRule[] = [];
  for (const r of nsgRulesOf(doc)) {
    const applied = match(r) ? nsgApplied(nsgId, r) : null;
    if (!applied) continue;
    deletes.push(r);
    results.push(applied);
  }
  return { results, puts: [], deletes };
}

/** "Enable JIT": a Deny rule per port at the bottom of `range`, unless an equivalent deny (anyone's) exists. */
export function planDenyRules(nsg: string, doc: ArmDoc, target: string, ports: PortSpec[], ips: string[], [lo, hi]: [number, number]): NsgPlan {
  const rules = nsgRulesOf(doc);
  const used = new Set(rules.filter((r) => (r.properties.direction ?? 'Inbound') === 'Inbound').map((r) => r.properties.priority));
  const results: AppliedRule[] = [];
  const puts: WireRule[] = [];
  for (const p of ports) {
    if (rules.some((r) => denies(r.properties, p, ips))) continue; // an equivalent deny exists (ours or anyone's)
    let priority = hi;
    while (used.has(priority) && priority >= lo) priority--;
    if (priority < lo) throw new NoFreePriorityError(nsg, [lo, hi]);
    used.add(priority);
    const rule: WireRule = {
      name: denyRuleName(target, p),
      properties: {
        priority,
        direction: 'Inbound',
        access: 'Deny',
        protocol: armProtocol(p.protocol),
        sourceAddressPrefix: '*',
        sourcePortRange: '*',
        ...(ips.length === 1 ? { destinationAddressPrefix: ips[0]! } : { destinationAddressPrefixes: ips }),
        destinationPortRange: String(p.port),
        description: denyDescription(target),
      },
    };
    rules.push(rule);
    puts.push(rule);
    results.push(denyApplied(nsg, rule));
  }
  return { results, puts, deletes: [] };
}

/** "Disable JIT": the bot's own Deny rules for the target, deleted. */
export function planUndeny(nsg: string, doc: ArmDoc, target: string): NsgPlan {
  const mine = (r: WireRule) => r.name.startsWith('jit-deny-') && r.properties.description === denyDescription(target);
  const deletes = nsgRulesOf(doc).filter(mine);
  return { results: deletes.map((r) => denyApplied(nsg, r)), puts: [], deletes };
}

/**
 * Ports still open from the Internet to these addresses across the path: traffic passes only if, on
 * every NSG, the first matching rule allows it (no matching rule: the default rules deny it). The
 * bot's own grant rules are intended openings and left out. Names the winning rule on each NSG.
 */
export function winningAllows(docs: Array<{ nsg: string; doc: ArmDoc }>, ports: PortSpec[], ips: string[]): string[] {
  const out: string[] = [];
  for (const p of ports) {
    const firstMatches = docs.map(({ nsg, doc }) => {
      const matching = nsgRulesOf(doc)
        .filter((r) => (r.properties.direction ?? 'Inbound') === 'Inbound' && !parseRuleDescription(r.properties.description) && covers(r.properties, p, ips))
        .sort((a, b) => a.properties.priority - b.properties.priority);
      return { nsg, first: matching[0] };
    });
    if (firstMatches.every((m) => m.first?.properties.access === 'Allow')) {
      for (const m of firstMatches) out.push(`${m.nsg.split('/').pop()}/${m.first!.name}@${m.first!.properties.priority} (${p.port}/${p.protocol})`);
    }
  }
  return out;
}
