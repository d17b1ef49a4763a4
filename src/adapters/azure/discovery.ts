// Where a VM's rules go: ARM ids, the network path from a VM to its NSGs (NIC and subnet NSGs, the
// private addresses, the primary IP), and the Resource Graph queries and joins of the inventory.
// Pure: the gate reads the documents, these functions make sense of them.
import { NETWORK_API, type ArmDoc } from './arm.js';

export interface ArmId {
  subscription: string;
  resourceGroup: string;
  name: string;
}

/** Parses `/subscriptions/<s>/resourceGroups/<rg>/providers/<ns>/<type>/<name>[/<child>/<name>]`. */
export function parseArmId(id: string): ArmId & { parent?: string } {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/[^/]+\/[^/]+\/([^/]+)(?:\/[^/]+\/([^/]+))?$/i.exec(id);
  if (!m) throw new Error(`not an ARM resource id: ${id}`);
  return m[4] ? { subscription: m[1]!, resourceGroup: m[2]!, name: m[4], parent: m[3]! } : { subscription: m[1]!, resourceGroup: m[2]!, name: m[3]! };
}

export class UnsupportedTargetError extends Error {
  constructor(target: string, reason: string) {
    super(`${target} is not supported for just-in-time access: ${reason}`);
    this.name = 'UnsupportedTargetError';
  }
}

export interface NetworkPath {
  /** NSG ids in the path (NIC NSGs first, then subnet NSGs), each once. */
  nsgs: string[];
  /** The VM's private IPs (destinations of the rules). */
  privateIps: string[];
  /** The primary NIC's primary IP configuration's address (where DNAT translates to). */
  primaryIp: string;
  at: number;
}

export type ResourceKind = 'nsg' | 'firewall' | 'rcg';

export function kindOf(resourceId: string): ResourceKind {
  if (/\/networkSecurityGroups\/[^/]+$/i.test(resourceId)) return 'nsg';
  if (/\/azureFirewalls\//i.test(resourceId)) return 'firewall';
  if (/\/firewallPolicies\/[^/]+\/ruleCollectionGroups\//i.test(resourceId)) return 'rcg';
  throw new Error(`not a resource jit-bot writes to: ${resourceId}`);
}

export const DISCOVERY_TTL_MS = 5 * 60_000;

/** One VM of the inventory; `reason` when it cannot be supported. */
export type InventoryRow = { id: string; name: string; reason?: string };

/** Resource Graph recommends fewer than 300 subscriptions per query. */
export const GRAPH_SUBSCRIPTIONS_PER_QUERY = 300;

/**
 * VMs with their NIC references, NICs with their NSG and IP configurations, and scale sets (their
 * orchestration mode and capacity). Sorted by `id` (projected): Resource Graph pages only results
 * that have it.
 */
export const GRAPH_VMS_NICS_SCALE_SETS = `Resources
| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces', 'microsoft.compute/virtualmachinescalesets')
| project id, name, type, nics = properties.networkProfile.networkInterfaces, nsg = tostring(properties.networkSecurityGroup.id), ipConfigurations = properties.ipConfigurations, orchestrationMode = tostring(properties.orchestrationMode), capacity = sku.capacity
| order by id asc`;

/** NSGs associated with subnets, and those subnets: the subnet NSGs of every path. */
export const GRAPH_SUBNET_NSGS = `Resources
| where type =~ 'microsoft.network/networksecuritygroups'
| where isnotnull(properties.subnets)
| project id, subnets = properties.subnets
| order by id asc`;

/** Uniform scale-set instances and their NICs (Resource Graph's ComputeResources table). */
export const GRAPH_SCALE_SET_INSTANCES = `ComputeResources
| where type in~ ('microsoft.compute/virtualmachinescalesets/virtualmachines', 'microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces')
| project id, name, type, nics = properties.networkProfile.networkInterfaces, nsg = tostring(properties.networkSecurityGroup.id), ipConfigurations = properties.ipConfigurations
| order by id asc`;

/** A VM's row: its path checked (not cached: Resource Graph's copy may lag ARM by seconds). */
export function inventoryRow(id: string, name: string, nics: Array<{ primary: boolean; doc: ArmDoc }>, subnetById: Map<string, ArmDoc>): InventoryRow {
  try {
    if (nics.length === 0) throw new UnsupportedTargetError(name, 'the VM has no network interface');
    pathOf(name, nics, subnetById);
    return { id, name };
  } catch (err) {
    if (err instanceof UnsupportedTargetError) return { id, name, reason: err.message.replace(/^.*?: /, '') };
    throw err;
  }
}

/** A projected `networkProfile.networkInterfaces` column as NIC references. */
export function nicRefList(v: unknown): Array<{ id?: string; properties?: { primary?: boolean } }> {
  return (Array.isArray(v) ? (v as Array<{ id?: unknown; properties?: { primary?: boolean } }>) : []).filter((n): n is { id: string; properties?: { primary?: boolean } } => typeof n?.id === 'string');
}

/** A scale-set instance's name as ARM shows it (`<scale set>_<instance id>`), from its id. */
export function instanceName(id: string): string {
  const m = /\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)$/i.exec(id);
  return m ? `${m[1]}_${m[2]}` : id.split('/').pop()!;
}

/** NICs of a scale set's instances are read through the scale set, at an API version of their own. */
export const VMSS_NIC_API = '2018-10-01';

export const nicApi = (nicId: string) => (/\/virtualMachineScaleSets\//i.test(nicId) ? VMSS_NIC_API : NETWORK_API);

export function nicRefsOf(vm: ArmDoc): Array<{ id?: string; properties?: { primary?: boolean } }> {
  return (((vm.properties?.networkProfile as { networkInterfaces?: Array<{ id?: string; properties?: { primary?: boolean } }> } | undefined)?.networkInterfaces) ?? []).filter((n) => n.id);
}

export function nicConfigs(nic: ArmDoc): Array<{ ip?: string; subnet?: string; primary: boolean }> {
  const cfgs = (nic.properties?.ipConfigurations as Array<{ properties?: { privateIPAddress?: string; primary?: boolean; subnet?: { id?: string } } }> | undefined) ?? [];
  return cfgs.map((c, i) => ({
    ...(c.properties?.privateIPAddress ? { ip: c.properties.privateIPAddress } : {}),
    ...(c.properties?.subnet?.id ? { subnet: c.properties.subnet.id } : {}),
    primary: c.properties?.primary ?? i === 0,
  }));
}

/** The network path from a VM's NICs and their subnets (as read, or as listed). */
export function pathOf(name: string, nics: Array<{ primary: boolean; doc: ArmDoc }>, subnets: Map<string, ArmDoc>): NetworkPath {
  const nicNsgs: string[] = [];
  const subnetNsgs: string[] = [];
  const ips: string[] = [];
  let primaryIp: string | undefined;
  for (const nic of nics) {
    const nsg = (nic.doc.properties?.networkSecurityGroup as { id?: string } | undefined)?.id;
    if (nsg) nicNsgs.push(nsg);
    for (const cfg of nicConfigs(nic.doc)) {
      if (cfg.ip) ips.push(cfg.ip);
      if (nic.primary && cfg.primary && cfg.ip) primaryIp = cfg.ip;
      const subnetNsg = cfg.subnet ? (subnets.get(cfg.subnet.toLowerCase())?.properties?.networkSecurityGroup as { id?: string } | undefined)?.id : undefined;
      if (subnetNsg) subnetNsgs.push(subnetNsg);
    }
  }
  const seen = new Set<string>();
  const nsgs = [...nicNsgs, ...subnetNsgs].filter((n) => (seen.has(n.toLowerCase()) ? false : (seen.add(n.toLowerCase()), true)));
  if (nsgs.length === 0) throw new UnsupportedTargetError(name, 'no network security group on its network interfaces or subnets');
  if (ips.length === 0) throw new UnsupportedTargetError(name, 'the VM has no private IP address');
  return { nsgs, privateIps: [...new Set(ips)], primaryIp: primaryIp ?? ips[0]!, at: Date.now() };
}
