// Azure Firewall DNAT, as ARM's wire JSON: classic firewalls' natRuleCollections and Firewall
// Policy rule collection groups, the bot's `jit-dnat` collection, and Azure Firewall's limit of 250
// public IPs + unique DNAT destinations. Pure: the gate reads and writes the documents.
import { parseRuleDescription } from '../../core/rule-tags.js';
import type { AppliedRule, FirewallRoute, PortSpec } from '../../core/types.js';
import type { ArmDoc } from './arm.js';
import { kindOf } from './discovery.js';
import { jitProtocol } from './nsg-rules.js';

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
