// Azure Firewall DNAT, as ARM's wire JSON: classic firewalls' natRuleCollections and Firewall
// Policy rule collection groups, the bot's `jit-dnat` collection, and Azure Firewall's limit of 250
// public IPs + unique DNAT destinations. Pure: the gate reads and writes the documents.
import { parseRuleDescription } from '../../core/rule-tags.js';
import type { AppliedRule, FirewallRoute, PortSpec } from '../../core/types.js';
import { NETWORK_API, type ArmClient, type ArmDoc } from './arm.js';
import { DISCOVERY_TTL_MS, UnsupportedTargetError, kindOf } from './discovery.js';
import { jitProtocol } from './nsg-rules.js';
import { ruleName } from '../../core/rule-tags.js';

/** The resource a firewall target's DNAT rules live in. */
export function dnatResourceOf(fw: FirewallRoute): string {
  if (fw.firewallId) return fw.firewallId;
  return `${fw.policyId}/ruleCollectionGroups/${fw.ruleCollectionGroup}`;
}

export const DNAT_COLLECTION = 'jit-dnat';

/**
 * Azure Firewall's DNAT limit, per firewall: its public IP addresses + the unique DNAT destinations
 * (destination address, port, protocol) of every rule it applies — with a Firewall Policy, every
 * rule collection group of the policy and of the policies it inherits from.
 */
export const FIREWALL_MAX_DNAT = 250;

export interface NatRuleWire {
  name?: string;
  description?: string;
  ruleType?: string;
  sourceAddresses?: string[];
  destinationAddresses?: string[];
  destinationPorts?: string[];
  protocols?: string[];
  ipProtocols?: string[];
  translatedAddress?: string;
  translatedPort?: string;
}

export interface NatCollection {
  name?: string;
  priority?: number;
  rules?: NatRuleWire[];
}

/** What a firewall / rule collection group PUT carries: location (firewalls), tags and properties, without read-only state. */
export function writableDoc(resourceId: string, doc: ArmDoc): ArmDoc {
  const { provisioningState: _ignored, ...props } = doc.properties ?? {};
  return { ...(kindOf(resourceId) === 'firewall' ? { location: doc.location } : {}), ...(doc.tags ? { tags: doc.tags } : {}), ...(doc.zones ? { zones: doc.zones } : {}), properties: props };
}

export function dnatApplied(resId: string, r: NatRuleWire, priority: number): AppliedRule | null {
  const owner = parseRuleDescription(r.description);
  if (!owner || !r.name?.startsWith('jit-')) return null;
  const protos = r.ipProtocols ?? r.protocols;
  const publicPort = Number(r.destinationPorts?.[0] ?? 0);
  return {
    name: r.name,
    scope: resId,
    priority,
    direction: 'Inbound',
    access: 'Allow',
    protocol: jitProtocol(protos?.[0]),
    sourcePrefix: r.sourceAddresses?.join(',') ?? '*',
    destinationPort: publicPort,
    description: r.description ?? '',
    requestId: owner.requestId,
    expiresAt: owner.expiresAt,
    nat: { publicAddress: r.destinationAddresses?.[0] ?? '', publicPort, translatedPort: Number(r.translatedPort ?? 0) },
  };
}

/** What a Firewall Policy's other rule collection groups and its firewalls take of the DNAT limit. */
export interface DnatOutside {
  destinations: Set<string>;
  publicIps: number;
  /** Where they were counted, for the refusal's message. */
  where: string;
}

export class DnatLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnatLimitError';
  }
}

/** Unique DNAT destinations (address|port|protocol) of these rules, as Azure Firewall counts them. */
export function dnatDestinations(rules: NatRuleWire[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    const protos = r.ipProtocols ?? r.protocols ?? ['any'];
    for (const a of r.destinationAddresses ?? []) for (const p of r.destinationPorts ?? []) for (const x of protos) out.add(`${a}|${p}|${x}`.toLowerCase());
  }
  return out;
}

/** The DNAT rules of a Firewall Policy rule collection group (its NAT rule collections). */
export function natRulesOfGroup(doc: ArmDoc): NatRuleWire[] {
  return ((doc.properties?.ruleCollections as Array<NatCollection & { ruleCollectionType?: string }> | undefined) ?? []).filter((c) => c.ruleCollectionType === 'FirewallPolicyNatRuleCollection').flatMap((c) => c.rules ?? []);
}

/** The DNAT rules of a classic Azure Firewall. */
export function natRulesOfFirewall(doc: ArmDoc): NatRuleWire[] {
  return ((doc.properties?.natRuleCollections as Array<{ properties?: NatCollection }> | undefined) ?? []).flatMap((c) => c.properties?.rules ?? []);
}

/** A firewall's public IP addresses: its IP configurations that have one. */
export function publicIpCount(doc: ArmDoc): number {
  return ((doc.properties?.ipConfigurations as Array<{ properties?: { publicIPAddress?: unknown } }> | undefined) ?? []).filter((c) => c.properties?.publicIPAddress).length;
}

export class NoFreePortError extends Error {
  constructor(resId: string, pool: [number, number]) {
    super(`no free port in ${pool[0]}-${pool[1]} on ${resId.split('/').pop()}; widen the firewall's port pool in the policy file`);
    this.name = 'NoFreePortError';
  }
}

/** What one caller wants done to a firewall / rule collection group document (edited in place). */
export interface DocPlan {
  results: AppliedRule[];
  changed: boolean;
}

export function addDnatRules(resId: string, doc: ArmDoc, fw: FirewallRoute, requestId: string, ports: PortSpec[], source: string, vmIp: string, description: string, outside?: DnatOutside): DocPlan {
  const existingRules = natRuleList(resId, doc);
  const usedPorts = new Set(
    existingRules.filter((r) => (r.destinationAddresses ?? []).includes(fw.publicIp) || (r.destinationAddresses ?? []).includes('*')).flatMap((r) => (r.destinationPorts ?? []).map(Number)),
  );
  // Ports other rule collection groups of the policy (or its base policies) DNAT on this address are taken too.
  for (const d of outside?.destinations ?? []) {
    const [address, port] = d.split('|');
    if (address === fw.publicIp.toLowerCase() || address === '*') usedPorts.add(Number(port));
  }
  const pick = () => {
    for (let p = fw.portPool[0]; p <= fw.portPool[1]; p++) if (!usedPorts.has(p)) return usedPorts.add(p), p;
    throw new NoFreePortError(resId, fw.portPool);
  };
  const adds: Array<{ name: string; publicPort: number; p: PortSpec }> = [];
  const results: AppliedRule[] = [];
  const collection = dnatCollection(resId, doc, true)!;
  for (const p of ports) {
    const name = ruleName(requestId, p.port, p.protocol);
    const existing = existingRules.find((r) => r.name === name);
    if (existing) {
      const applied = dnatApplied(resId, existing, collection.priority ?? 0);
      if (applied) results.push(applied);
      continue;
    }
    adds.push({ name, publicPort: pick(), p });
  }
  if (adds.length > 0) {
    // Azure Firewall's limit: public IPs + unique destinations over every rule the firewall applies.
    const rcg = kindOf(resId) === 'rcg';
    const destinations = new Set([...(outside?.destinations ?? []), ...dnatDestinations(rcg ? natRulesOfGroup(doc) : natRulesOfFirewall(doc))]);
    for (const a of adds) destinations.add(`${fw.publicIp}|${a.publicPort}|${a.p.protocol === 'udp' ? 'udp' : 'tcp'}`.toLowerCase());
    const publicIps = rcg ? (outside?.publicIps ?? 1) : publicIpCount(doc);
    const total = destinations.size + publicIps;
    if (total > FIREWALL_MAX_DNAT) {
      const where = rcg ? (outside?.where ?? `the rule collection groups of ${fw.policyId?.split('/').pop()}`) : `the DNAT rule collections of ${resId.split('/').pop()}`;
      throw new DnatLimitError(`${resId.split('/').pop()} would bring its firewall to ${total} DNAT destinations (${destinations.size} unique destination address/port/protocol in ${where}, + ${publicIps} public IP address${publicIps === 1 ? '' : 'es'} of the firewall); Azure Firewall allows ${FIREWALL_MAX_DNAT} (public IPs + unique DNAT destinations). Remove unused DNAT rules or use another firewall`);
    }
  }
  const srcs = [source === '*' ? '*' : source];
  for (const a of adds) {
    const common = { name: a.name, description, sourceAddresses: srcs, destinationAddresses: [fw.publicIp], destinationPorts: [String(a.publicPort)], translatedAddress: vmIp, translatedPort: String(a.p.port) };
    const proto = a.p.protocol === 'udp' ? 'UDP' : 'TCP';
    const rule: NatRuleWire = kindOf(resId) === 'rcg' ? { ruleType: 'NatRule', ipProtocols: [proto], ...common } : { protocols: [proto], ...common };
    collection.rules!.push(rule);
    results.push(dnatApplied(resId, rule, collection.priority ?? 0)!);
  }
  return { results, changed: adds.length > 0 };
}

export function removeDnatRules(resId: string, doc: ArmDoc, match: (r: NatRuleWire) => boolean): DocPlan {
  const results: AppliedRule[] = [];
  const collection = dnatCollection(resId, doc, false);
  if (collection) {
    const keep: NatRuleWire[] = [];
    for (const r of collection.rules ?? []) {
      const applied = match(r) ? dnatApplied(resId, r, collection.priority ?? 0) : null;
      if (applied) results.push(applied);
      else keep.push(r);
    }
    collection.rules = keep;
  }
  return { results, changed: results.length > 0 };
}

/**
 * The bot's own DNAT rule collection (created on first use), classic or Firewall Policy, as ARM's
 * wire JSON: classic collections keep priority and rules under `properties`, policy ones inline.
 */
export function dnatCollection(resId: string, doc: ArmDoc, create: boolean): NatCollection | undefined {
  const props = (doc.properties ??= {});
  if (kindOf(resId) === 'rcg') {
    const list = ((props.ruleCollections as Array<NatCollection & { ruleCollectionType?: string }> | undefined) ??= []);
    props.ruleCollections = list;
    let c = list.find((x) => x.name === DNAT_COLLECTION);
    if (!c && create) {
      const used = new Set(list.map((x) => x.priority));
      let priority = 100;
      while (used.has(priority)) priority++;
      c = { ruleCollectionType: 'FirewallPolicyNatRuleCollection', name: DNAT_COLLECTION, priority, action: { type: 'DNAT' }, rules: [] } as NatCollection & { ruleCollectionType: string };
      list.push(c);
    }
    if (c) c.rules ??= [];
    return c;
  }
  const list = ((props.natRuleCollections as Array<{ name?: string; properties?: NatCollection & { action?: { type: string } } }> | undefined) ??= []);
  props.natRuleCollections = list;
  let c = list.find((x) => x.name === DNAT_COLLECTION);
  if (!c && create) {
    const used = new Set(list.map((x) => x.properties?.priority));
    let priority = 100;
    while (used.has(priority)) priority++;
    c = { name: DNAT_COLLECTION, properties: { priority, action: { type: 'Dnat' }, rules: [] } };
    list.push(c);
  }
  if (!c) return undefined;
  const p = (c.properties ??= {});
  p.rules ??= [];
  return { name: c.name, ...(p.priority !== undefined ? { priority: p.priority } : {}), get rules() { return p.rules; }, set rules(v) { p.rules = v; } } as NatCollection;
}

/** Every DNAT rule of a document that could be ours. */
export function natRuleList(resId: string, doc: ArmDoc): NatRuleWire[] {
  if (kindOf(resId) === 'rcg') return (((doc.properties?.ruleCollections as NatCollection[] | undefined) ?? []).flatMap((c) => c.rules ?? []));
  return (((doc.properties?.natRuleCollections as Array<{ properties?: NatCollection }> | undefined) ?? []).flatMap((c) => c.properties?.rules ?? []));
}

/**
 * Reads about firewall targets: each route checked once (cached 5 min) before its first DNAT write,
 * and, for a Firewall Policy, what the policy's other rule collection groups and its firewalls'
 * public IPs take of Azure Firewall's 250.
 */
export class FirewallRoutes {
  constructor(private readonly arm: ArmClient) {}

  /**
   * A firewall route is checked once (cached 5 min) before its first DNAT write: the rule
   * collection group's name is one ARM accepts, and the public IP people will connect to is one of
   * the firewall's (the classic firewall's, or those of the firewalls the policy is attached to).
   */
  async check(target: string, fw: FirewallRoute): Promise<void> {
    const key = `${dnatResourceOf(fw)}|${fw.publicIp}`.toLowerCase();
    const at = this.routesChecked.get(key);
    if (at !== undefined && Date.now() - at < DISCOVERY_TTL_MS) return;
    if (fw.ruleCollectionGroup !== undefined && !/^[a-z0-9](?:[a-z0-9_.-]{0,78}[a-z0-9_])?$/i.test(fw.ruleCollectionGroup)) {
      throw new UnsupportedTargetError(target, `"${fw.ruleCollectionGroup}" is not a valid rule collection group name (1-80 letters, digits, _ . -; starting with a letter or digit, ending with a letter, digit or _)`);
    }
    let firewalls: string[];
    if (fw.firewallId) firewalls = [fw.firewallId];
    else {
      const policy = (await this.arm.get(fw.policyId!, NETWORK_API)).doc;
      firewalls = ((policy.properties?.firewalls as Array<{ id?: string }> | undefined) ?? []).flatMap((f) => (f.id ? [f.id] : []));
      if (firewalls.length === 0) throw new UnsupportedTargetError(target, `the firewall policy ${fw.policyId!.split('/').pop()} is attached to no firewall`);
    }
    const addresses = new Set<string>();
    for (const id of firewalls) {
      const doc = (await this.arm.get(id, NETWORK_API)).doc;
      const cfgs = (doc.properties?.ipConfigurations as ArmDoc[] | undefined) ?? [];
      this.firewallPublicIps.set(id.toLowerCase(), publicIpCount(doc));
      for (const c of cfgs) {
        const pip = (c.properties?.publicIPAddress as { id?: string } | undefined)?.id;
        if (!pip) continue;
        const ip = (await this.arm.get(pip, NETWORK_API)).doc.properties?.ipAddress;
        if (typeof ip === 'string') addresses.add(ip);
      }
    }
    if (!addresses.has(fw.publicIp)) {
      throw new UnsupportedTargetError(target, `${fw.publicIp} is not a public IP of its firewall (${[...addresses].join(', ') || 'none found'}); fix publicIp in the policy file`);
    }
    this.routesChecked.set(key, Date.now());
  }

  private routesChecked = new Map<string, number>();

  /** Public IP addresses per firewall, as last read (checkFirewallRoute). */
  private firewallPublicIps = new Map<string, number>();

  /**
   * The DNAT destinations a Firewall Policy target shares Azure Firewall's limit with outside the
   * bot's own rule collection group: every other group of the policy and of the policies it
   * inherits from (`basePolicy`, followed up the chain), and the public IPs of the firewalls the
   * policy is attached to (the most of any of them). Read fresh for every grant.
   */
  async outside(fw: FirewallRoute): Promise<DnatOutside> {
    const own = dnatResourceOf(fw).toLowerCase();
    const destinations = new Set<string>();
    const policies: string[] = [];
    let publicIps = 0;
    const seen = new Set<string>();
    for (let id: string | undefined = fw.policyId; id && !seen.has(id.toLowerCase()); ) {
      seen.add(id.toLowerCase());
      const [policy, groups] = await Promise.all([this.arm.get(id, NETWORK_API), this.arm.list(`${id}/ruleCollectionGroups`, NETWORK_API)]);
      policies.push(id.split('/').pop()!);
      for (const g of groups) if (String(g.id ?? '').toLowerCase() !== own) for (const d of dnatDestinations(natRulesOfGroup(g))) destinations.add(d);
      if (id === fw.policyId) {
        for (const f of (policy.doc.properties?.firewalls as Array<{ id?: string }> | undefined) ?? []) {
          if (!f.id) continue;
          let n = this.firewallPublicIps.get(f.id.toLowerCase());
          if (n === undefined) {
            n = publicIpCount((await this.arm.get(f.id, NETWORK_API)).doc);
            this.firewallPublicIps.set(f.id.toLowerCase(), n);
          }
          publicIps = Math.max(publicIps, n);
        }
      }
      id = (policy.doc.properties?.basePolicy as { id?: string } | undefined)?.id;
    }
    return { destinations, publicIps, where: `the rule collection groups of ${policies[0]}${policies.length > 1 ? ` and of its base polic${policies.length > 2 ? 'ies' : 'y'} ${policies.slice(1).join(', ')}` : ''}` };
  }
}
