// The inventory behind `vms`: every VM of the subscriptions, supported or not, from Azure Resource
// Graph (a few paged queries whatever the number of VMs), or from paged ARM lists where Resource
// Graph cannot answer.
import { ArmError, COMPUTE_API, NETWORK_API, type ArmClient, type ArmDoc } from './arm.js';
import type { NetworkTarget, Target } from '../../core/types.js';
import {
  GRAPH_SCALE_SET_INSTANCES, GRAPH_SUBNET_NSGS, GRAPH_SUBSCRIPTIONS_PER_QUERY, GRAPH_VMS_NICS_SCALE_SETS, UnsupportedTargetError, VMSS_NIC_API,
  instanceName, inventoryRow, nicRefList, nicRefsOf, pathOf, type InventoryRow, type NetworkPath,
} from './discovery.js';

export interface InventoryDeps {
  arm: ArmClient;
  /** The subscriptions to list (configured, and those of the policy's targets). */
  subscriptions: () => Set<string>;
  /** A VM's network path read from ARM (the gate's discovery). */
  discover: (target: NetworkTarget, fresh: boolean) => Promise<NetworkPath>;
  /** Keeps a path found in ARM's own lists for the gate's writes. */
  cachePath: (vmId: string, path: NetworkPath) => void;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export class Inventory {
  constructor(private readonly deps: InventoryDeps) {}

  /**
   * Every VM of the subscriptions, supported or not, with the reason when it is not (no NIC, no
   * NSG in its path, no private address), as Defender's JIT blade shows them.
   *
   * Built from Azure Resource Graph (see `inventoryFromGraph`): a few paged queries whatever the
   * number of VMs. If Resource Graph cannot answer (an error after its retries, a truncated
   * result, a cloud without it), the paged ARM lists are used instead (`inventoryFromLists`), so
   * `vms` still answers, at more calls.
   */
  async list(): Promise<InventoryRow[]> {
    const subs = [...this.deps.subscriptions()];
    if (Date.now() >= this.graphMissingUntil) {
      try {
        return await this.inventoryFromGraph(subs);
      } catch (err) {
        // An endpoint without Resource Graph (a sovereign cloud, a proxy) is not asked again for an hour.
        if (err instanceof ArmError && (err.status === 400 || err.status === 404) && /^(NoRegisteredProviderFound|InvalidResourceType|InvalidResourceNamespace)$/i.test(err.code)) this.graphMissingUntil = Date.now() + 3600_000;
        this.deps.log('azure: Resource Graph could not build the inventory; listing per subscription instead', { err: err instanceof Error ? err.message : String(err) });
      }
    }
    return this.inventoryFromLists(subs);
  }
  private graphMissingUntil = 0;

  /**
   * The inventory from Azure Resource Graph, joined here rather than in KQL (no `join` /
   * `mv-expand`, whose per-query limits a large estate would meet; each query a flat projection
   * that pages by `$skipToken`):
   * 1. `Resources`: VMs (their NIC references), NICs (NSG, IP configurations: private addresses,
   *    primary flags, subnets) and scale sets (to know the Uniform ones);
   * 2. `Resources`: NSGs associated with subnets (`properties.subnets`): the subnet NSGs;
   * 3. `ComputeResources`: Uniform scale-set instances and their NICs (Resource Graph keeps them
   *    there, not in `Resources`; Flexible instances are ordinary VMs and come with 1.).
   * A Uniform scale set of which 3. shows no instance (a cloud whose Resource Graph lacks the
   * table, or data not indexed yet) is listed through ARM (its instances, their NICs). A VM whose
   * NIC is not in the result (another subscription, or created seconds ago: Resource Graph lags
   * ARM by seconds) is read directly. Paths found here are not cached for writes: a grant reads
   * its VM's path from ARM itself.
   */
  private async inventoryFromGraph(subs: string[]): Promise<InventoryRow[]> {
    const chunks: string[][] = [];
    for (let i = 0; i < subs.length; i += GRAPH_SUBSCRIPTIONS_PER_QUERY) chunks.push(subs.slice(i, i + GRAPH_SUBSCRIPTIONS_PER_QUERY));
    const all = async (query: string) => (await Promise.all(chunks.map((c) => this.deps.arm.graph(query, c)))).flat();
    const [resources, subnetNsgRows, instances] = await Promise.all([
      all(GRAPH_VMS_NICS_SCALE_SETS),
      all(GRAPH_SUBNET_NSGS),
      all(GRAPH_SCALE_SET_INSTANCES).catch((err: unknown) => {
        this.deps.log('azure: Resource Graph has no scale-set instances here (ComputeResources); listing Uniform scale sets through ARM', { err: err instanceof Error ? err.message : String(err) });
        return null;
      }),
    ]);
    const typeOf = (r: ArmDoc) => String(r.type ?? '').toLowerCase();
    const nicById = new Map<string, ArmDoc>();
    for (const r of [...resources, ...(instances ?? [])]) {
      if (typeof r.id !== 'string' || !/\/networkinterfaces$/.test(typeOf(r))) continue;
      nicById.set(r.id.toLowerCase(), {
        id: r.id,
        properties: { ...(typeof r.nsg === 'string' && r.nsg ? { networkSecurityGroup: { id: r.nsg } } : {}), ipConfigurations: Array.isArray(r.ipConfigurations) ? r.ipConfigurations : [] },
      });
    }
    const subnetById = new Map<string, ArmDoc>();
    for (const n of subnetNsgRows) {
      if (typeof n.id !== 'string' || !Array.isArray(n.subnets)) continue;
      for (const sn of n.subnets as Array<{ id?: unknown }>) if (typeof sn?.id === 'string') subnetById.set(sn.id.toLowerCase(), { id: sn.id, properties: { networkSecurityGroup: { id: n.id } } });
    }
    const out: InventoryRow[] = [];
    const later: Array<Promise<InventoryRow[]>> = [];
    const vmRow = (id: string, name: string, refs: Array<{ id?: string; properties?: { primary?: boolean } }>) => {
      const found = refs.map((r) => ({ primary: r.properties?.primary ?? refs.length === 1, doc: nicById.get(r.id!.toLowerCase()) }));
      if (found.some((f) => !f.doc)) later.push(this.rowFromArm(id, name).then((r) => (r ? [r] : [])));
      else out.push(inventoryRow(id, name, found as Array<{ primary: boolean; doc: ArmDoc }>, subnetById));
    };
    const scaleSets: string[] = [];
    for (const r of resources) {
      if (typeof r.id !== 'string') continue;
      if (typeOf(r) === 'microsoft.compute/virtualmachinescalesets') {
        // Uniform (or older, without the property) and not scaled to zero: it has instances to list.
        if (String(r.orchestrationMode ?? '').toLowerCase() !== 'flexible' && r.capacity !== 0) scaleSets.push(r.id);
      } else if (typeOf(r) === 'microsoft.compute/virtualmachines' && typeof r.name === 'string') vmRow(r.id, r.name, nicRefList(r.nics));
    }
    const instancesOf = new Map<string, ArmDoc[]>();
    for (const r of instances ?? []) {
      if (typeof r.id !== 'string' || typeOf(r) !== 'microsoft.compute/virtualmachinescalesets/virtualmachines') continue;
      const ss = r.id.replace(/\/virtualMachines\/[^/]+$/i, '').toLowerCase();
      instancesOf.set(ss, [...(instancesOf.get(ss) ?? []), r]);
    }
    for (const ss of scaleSets) {
      const listed = instancesOf.get(ss.toLowerCase());
      if (listed) for (const inst of listed) vmRow(String(inst.id), instanceName(String(inst.id)), nicRefList(inst.nics));
      else later.push(this.scaleSetRows(ss, subnetById));
    }
    for (const rows of await Promise.all(later)) out.push(...rows);
    return out;
  }

  /** A VM's row from its own ARM documents (VM, NICs, subnets); a VM gone meanwhile is left out. */
  private async rowFromArm(id: string, name: string): Promise<InventoryRow | null> {
    try {
      await this.deps.discover({ name, id, os: 'linux' }, true);
      return { id, name };
    } catch (err) {
      if (err instanceof UnsupportedTargetError) return { id, name, reason: err.message.replace(/^.*?: /, '') };
      if (err instanceof ArmError && err.status === 404) return null;
      // Unreadable now (throttled past the deadline, forbidden): listed without a verdict on its path.
      this.deps.log('azure: could not read a VM\'s network path for the inventory', { vm: id, err: err instanceof Error ? err.message : String(err) });
      return { id, name };
    }
  }

  /** A Uniform scale set's instances and their NICs, listed through ARM (two paged lists). */
  private async scaleSetRows(ssId: string, subnetById: Map<string, ArmDoc>): Promise<InventoryRow[]> {
    const [instances, nics] = await Promise.all([this.deps.arm.list(`${ssId}/virtualMachines`, COMPUTE_API), this.deps.arm.list(`${ssId}/networkInterfaces`, VMSS_NIC_API)]);
    const nicById = new Map(nics.map((n) => [String(n.id ?? '').toLowerCase(), n]));
    return instances.flatMap((inst) => {
      if (typeof inst.id !== 'string' || typeof inst.name !== 'string') return [];
      const refs = nicRefsOf(inst);
      return [inventoryRow(inst.id, inst.name, refs.map((r) => ({ primary: r.properties?.primary ?? refs.length === 1, doc: nicById.get(r.id!.toLowerCase()) })).filter((f): f is { primary: boolean; doc: ArmDoc } => Boolean(f.doc)), subnetById)];
    });
  }

  /**
   * The inventory from paged ARM lists per subscription (VMs, NICs, virtual networks with their
   * subnets, scale sets; two more per Uniform scale set), joined here: the fallback when Resource
   * Graph cannot answer. Paths found are cached for writes (the documents are ARM's own).
   */
  private async inventoryFromLists(subscriptions: string[]): Promise<InventoryRow[]> {
    const out: InventoryRow[] = [];
    const row = (id: string, name: string, nics: Array<{ primary: boolean; doc: ArmDoc | undefined }>, subnetById: Map<string, ArmDoc>) => {
      try {
        if (nics.length === 0) throw new UnsupportedTargetError(name, 'the VM has no network interface');
        const path = pathOf(name, nics as Array<{ primary: boolean; doc: ArmDoc }>, subnetById);
        this.deps.cachePath(id, path);
        out.push({ id, name });
      } catch (err) {
        if (err instanceof UnsupportedTargetError) out.push({ id, name, reason: err.message.replace(/^.*?: /, '') });
        else throw err;
      }
    };
    for (const sub of subscriptions) {
      const [vms, nics, vnets, sets] = await Promise.all([
        this.deps.arm.list(`/subscriptions/${sub}/providers/Microsoft.Compute/virtualMachines`, COMPUTE_API),
        this.deps.arm.list(`/subscriptions/${sub}/providers/Microsoft.Network/networkInterfaces`, NETWORK_API),
        this.deps.arm.list(`/subscriptions/${sub}/providers/Microsoft.Network/virtualNetworks`, NETWORK_API),
        this.deps.arm.list(`/subscriptions/${sub}/providers/Microsoft.Compute/virtualMachineScaleSets`, COMPUTE_API),
      ]);
      const nicById = new Map(nics.map((n) => [String(n.id ?? '').toLowerCase(), n]));
      const subnetById = new Map<string, ArmDoc>();
      for (const v of vnets) for (const s of ((v.properties?.subnets as ArmDoc[] | undefined) ?? [])) subnetById.set(String(s.id ?? '').toLowerCase(), s);
      for (const vm of vms) {
        if (typeof vm.id !== 'string' || typeof vm.name !== 'string') continue;
        const refs = nicRefsOf(vm);
        const found = refs.map((r) => ({ primary: r.properties?.primary ?? refs.length === 1, doc: nicById.get(r.id!.toLowerCase()) }));
        if (found.some((f) => !f.doc)) {
          // A NIC in another subscription: read the path the slow way.
          try {
            await this.deps.discover({ name: vm.name, id: vm.id, os: 'linux' }, true);
            out.push({ id: vm.id, name: vm.name });
          } catch (err) {
            if (err instanceof UnsupportedTargetError) out.push({ id: vm.id, name: vm.name, reason: err.message.replace(/^.*?: /, '') });
            else throw err;
          }
        } else row(vm.id, vm.name, found, subnetById);
      }
      // Uniform scale sets: instances and their NICs live under the scale set.
      for (const ss of sets) {
        if (typeof ss.id !== 'string' || String(ss.properties?.orchestrationMode ?? 'Uniform') === 'Flexible') continue;
        const [instances, ssNics] = await Promise.all([this.deps.arm.list(`${ss.id}/virtualMachines`, COMPUTE_API), this.deps.arm.list(`${ss.id}/networkInterfaces`, VMSS_NIC_API)]);
        const ssNicById = new Map(ssNics.map((n) => [String(n.id ?? '').toLowerCase(), n]));
        for (const inst of instances) {
          if (typeof inst.id !== 'string' || typeof inst.name !== 'string') continue;
          const refs = nicRefsOf(inst);
          row(inst.id, inst.name, refs.map((r) => ({ primary: r.properties?.primary ?? refs.length === 1, doc: ssNicById.get(r.id!.toLowerCase()) })).filter((f) => f.doc), subnetById);
        }
      }
    }
    return out;
  }
}
