// The Azure NetworkGate: every grant is an Allow-inbound rule per port on each network security
// group in the VM's path (NIC NSGs and subnet NSGs: both must allow, as in Defender for Cloud's
// JIT), for the requester's source prefix to the VM's private IPs.
//
// Writes follow ARM's rules. One NSG accepts one operation at a time, so changes for the same NSG
// queue here and are applied together in one read-modify-write: GET (ETag) → edit the rule list
// → PUT with If-Match. A concurrent change elsewhere (another replica, an admin, a policy) makes
// the PUT fail with 412 and is re-read, never overwritten. A Redis lock per NSG keeps replicas
// from racing each other into 409s; the ETag is what makes it safe even if the lock expires.
// 409 AnotherOperationInProgress, 429 (Retry-After honoured), 5xx and network errors are retried
// with jittered backoff until a deadline; a priority conflict re-reads and picks again.
import type { TokenCredential } from '@azure/identity';
import { ComputeManagementClient } from '@azure/arm-compute';
import {
  NetworkManagementClient,
  type AzureFirewall,
  type AzureFirewallNatRule,
  type FirewallPolicyNatRuleCollection,
  type FirewallPolicyRuleCollectionGroup,
  type NatRule,
  type NetworkSecurityGroup,
  type SecurityRule,
} from '@azure/arm-network';
import type { Redis } from 'ioredis';
import type { GrantSpec, NetworkGate } from '../../app/ports.js';
import type { AppliedRule, FirewallRoute, PortSpec, Protocol, Target } from '../../core/types.js';
import { parseRuleDescription, ruleDescription, ruleName } from '../simulated/gate.js';

export interface AzureGateOptions {
  credential: TokenCredential;
  /** ARM endpoint (sovereign clouds, the emulator); default https://management.azure.com. */
  endpoint?: string;
  /** Extra CA certificate(s) to trust for the ARM endpoint (a TLS-inspecting proxy, the emulator). */
  caCert?: string;
  /** Priorities the bot may use for Allow rules (default 100–199, as Azure JIT). */
  priorityRange?: [number, number];
  /** Priorities for the bot's Deny rules ("enable JIT"; default 4000–4096, below everything else). */
  denyPriorityRange?: [number, number];
  /** How long a write keeps retrying 409 / 429 / 5xx before the grant fails. */
  writeDeadlineMs?: number;
  /** LRO polling interval. */
  pollIntervalMs?: number;
  /**
   * How long one ARM call (a read, or a write with its polling) may take before it is abandoned
   * and retried (default 20 s). A timed-out write may still have been applied: the retry re-reads
   * with the new ETag, and every change is idempotent.
   */
  requestTimeoutMs?: number;
  /** Cross-replica lock per NSG. */
  redis?: Redis;
  lockPrefix?: string;
  /** Subscriptions whose VMs the inventory lists (besides those of the policy's targets). */
  subscriptions?: string[];
  /** The targets whose NSGs the reconciler lists. */
  targets: () => Target[];
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
}

interface ArmId {
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
  at: number;
}

/** One caller's edit of a resource (NSG, firewall, rule collection group), applied in a batch. */
interface Change {
  /** Edits the resource document in place; returns what it did. Throws (without editing) to refuse. */
  mutate: (doc: ResourceDoc) => { results: AppliedRule[]; changed: boolean };
  resolve: (applied: AppliedRule[]) => void;
  reject: (err: unknown) => void;
}

type ResourceKind = 'nsg' | 'firewall' | 'rcg';
type ResourceDoc = NetworkSecurityGroup | AzureFirewall | FirewallPolicyRuleCollectionGroup;

export function kindOf(resourceId: string): ResourceKind {
  if (/\/networkSecurityGroups\//i.test(resourceId)) return 'nsg';
  if (/\/azureFirewalls\//i.test(resourceId)) return 'firewall';
  if (/\/firewallPolicies\/[^/]+\/ruleCollectionGroups\//i.test(resourceId)) return 'rcg';
  throw new Error(`not a resource jit-bot writes to: ${resourceId}`);
}

/** The resource a firewall target's DNAT rules live in. */
export function dnatResourceOf(fw: FirewallRoute): string {
  if (fw.firewallId) return fw.firewallId;
  return `${fw.policyId}/ruleCollectionGroups/${fw.ruleCollectionGroup}`;
}

const DNAT_COLLECTION = 'jit-dnat';
/** Matches a rule this bot wrote for `requestId` (name and description both say so). */
const ownedBy = (requestId: string) => (r: { name?: string; description?: string }) =>
  Boolean(r.name?.startsWith(`jit-${requestId}-`)) && parseRuleDescription(r.description)?.requestId === requestId;

const DISCOVERY_TTL_MS = 5 * 60_000;

const armProtocol = (p: Protocol): string => (p === 'tcp' ? 'Tcp' : p === 'udp' ? 'Udp' : '*');
const jitProtocol = (p: string | undefined): Protocol => (p?.toLowerCase() === 'tcp' ? 'tcp' : p?.toLowerCase() === 'udp' ? 'udp' : '*');

export type ArmCall = 'read' | 'write';
/**
 * What ARM answered one call, as a class: `ok`, `404`, `409` (another operation in progress),
 * `412` (ETag moved), `429` (throttled), other `4xx`, `5xx`, `timeout` (no answer within the
 * request timeout), `network` (no HTTP answer at all) or `failed` (an error with a success status:
 * a long-running operation that ended Failed).
 */
export type ArmAnswer = 'ok' | '404' | '409' | '412' | '429' | '4xx' | '5xx' | 'timeout' | 'network' | 'failed';

function answerClass(status: number | undefined): ArmAnswer {
  if (status === undefined) return 'network';
  if (status === 404 || status === 409 || status === 412 || status === 429) return String(status) as ArmAnswer;
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  return 'failed';
}

export function errorInfo(err: unknown): { status?: number; code?: string; retryAfterMs?: number } {
  const e = err as { statusCode?: number; code?: string; response?: { headers?: { get(name: string): string | undefined } } };
  const ra = e.response?.headers?.get('retry-after');
  const retryAfterMs = ra !== undefined && ra !== null && ra !== '' ? (/^\d+$/.test(ra) ? Number(ra) * 1000 : Math.max(0, Date.parse(ra) - Date.now())) : undefined;
  return {
    ...(e.statusCode !== undefined ? { status: e.statusCode } : {}),
    ...(e.code ? { code: e.code } : {}),
    ...(retryAfterMs !== undefined && !Number.isNaN(retryAfterMs) ? { retryAfterMs } : {}),
  };
}

export class AzureGate implements NetworkGate {
  private clients = new Map<string, { network: NetworkManagementClient; compute: ComputeManagementClient }>();
  private paths = new Map<string, NetworkPath>();
  private queues = new Map<string, { changes: Change[]; running: boolean }>();
  private readonly range: [number, number];
  private readonly deadlineMs: number;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Writes issued (PUTs) and their outcomes, for benchmarks and tests. */
  readonly stats = { puts: 0, retries: 0, conflicts409: 0, preconditionFailed412: 0, throttled429: 0, serverErrors: 0, timeouts: 0 };
  /** Every ARM call's answer since start, by call (read / write) and answer class: see {@link armAnswers}. */
  private readonly answerCounts = new Map<string, number>();

  constructor(private readonly opts: AzureGateOptions) {
    this.range = opts.priorityRange ?? [100, 199];
    this.deadlineMs = opts.writeDeadlineMs ?? 60_000;
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.timeoutMs = opts.requestTimeoutMs ?? 20_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.log = opts.log ?? (() => {});
  }

  private client(subscription: string) {
    let c = this.clients.get(subscription);
    if (!c) {
      const endpoint = (this.opts.endpoint ?? 'https://management.azure.com').replace(/\/+$/, '');
      const common = {
        endpoint,
        credentialScopes: [`${endpoint}/.default`],
        // Our own retry loop decides (deadline, Retry-After, re-read on 412): the SDK must not also retry.
        retryOptions: { maxRetries: 0 },
        ...(this.opts.caCert ? { tlsOptions: { ca: this.opts.caCert } } : {}),
      };
      c = {
        network: new NetworkManagementClient(this.opts.credential, subscription, common),
        compute: new ComputeManagementClient(this.opts.credential, subscription, common),
      };
      this.clients.set(subscription, c);
    }
    return c;
  }

  /**
   * Runs one ARM call with a deadline: the call gets an abort signal, and the caller gets a
   * `RequestTimeout` error when the time is up even if the SDK keeps waiting (a hung connection).
   */
  private async timed<T>(what: string, call: (abortSignal: AbortSignal) => Promise<T>, kind: ArmCall = 'read'): Promise<T> {
    const ctl = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stats.timeouts++;
        timedOut = true;
        const err = Object.assign(new Error(`${what}: no answer from Azure Resource Manager within ${Math.round(this.timeoutMs / 1000)} s`), { code: 'RequestTimeout' });
        ctl.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    try {
      const out = await Promise.race([call(ctl.signal), timeout]);
      this.answered(kind, 'ok');
      return out;
    } catch (err) {
      this.answered(kind, timedOut ? 'timeout' : answerClass(errorInfo(err).status));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private answered(call: ArmCall, answer: ArmAnswer): void {
    const key = `${call} ${answer}`;
    this.answerCounts.set(key, (this.answerCounts.get(key) ?? 0) + 1);
  }

  /** ARM's answers since start: one count per call kind and answer class (metrics). */
  armAnswers(): Array<{ call: ArmCall; answer: ArmAnswer; count: number }> {
    return [...this.answerCounts].map(([key, count]) => {
      const [call, answer] = key.split(' ') as [ArmCall, ArmAnswer];
      return { call, answer, count };
    });
  }

  // ------------------------------------------------------------------ discovery

  /** VM → NICs → their NSGs and their subnets' NSGs, and the private IPs. Cached for 5 minutes. */
  async discover(target: Target, fresh = false): Promise<NetworkPath> {
    const cached = this.paths.get(target.id.toLowerCase());
    if (cached && !fresh && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached;
    const vmId = parseArmId(target.id);
    const { compute } = this.client(vmId.subscription);
    const vm = await this.timed(`reading VM ${vmId.name}`, (abortSignal) => compute.virtualMachines.get(vmId.resourceGroup, vmId.name, { abortSignal }));
    const nicIds = (vm.networkProfile?.networkInterfaces ?? []).flatMap((n) => (n.id ? [n.id] : []));
    if (nicIds.length === 0) throw new UnsupportedTargetError(target.name, 'the VM has no network interface');
    const nicNsgs: string[] = [];
    const subnetIds = new Set<string>();
    const ips: string[] = [];
    for (const nicId of nicIds) {
      const id = parseArmId(nicId);
      const nic = await this.timed(`reading NIC ${id.name}`, (abortSignal) => this.client(id.subscription).network.networkInterfaces.get(id.resourceGroup, id.name, { abortSignal }));
      if (nic.networkSecurityGroup?.id) nicNsgs.push(nic.networkSecurityGroup.id);
      for (const cfg of nic.ipConfigurations ?? []) {
        if (cfg.privateIPAddress) ips.push(cfg.privateIPAddress);
        if (cfg.subnet?.id) subnetIds.add(cfg.subnet.id);
      }
    }
    const subnetNsgs: string[] = [];
    for (const subnetId of subnetIds) {
      const id = parseArmId(subnetId);
      const subnet = await this.timed(`reading subnet ${id.name}`, (abortSignal) => this.client(id.subscription).network.subnets.get(id.resourceGroup, id.parent!, id.name, { abortSignal }));
      if (subnet.networkSecurityGroup?.id) subnetNsgs.push(subnet.networkSecurityGroup.id);
    }
    const seen = new Set<string>();
    const nsgs = [...nicNsgs, ...subnetNsgs].filter((n) => (seen.has(n.toLowerCase()) ? false : (seen.add(n.toLowerCase()), true)));
    if (nsgs.length === 0) throw new UnsupportedTargetError(target.name, 'no network security group on its network interfaces or subnets');
    if (ips.length === 0) throw new UnsupportedTargetError(target.name, 'the VM has no private IP address');
    const path = { nsgs, privateIps: [...new Set(ips)], at: Date.now() };
    this.paths.set(target.id.toLowerCase(), path);
    return path;
  }

  // ------------------------------------------------------------------ NetworkGate

  async open(grant: GrantSpec): Promise<AppliedRule[]> {
    const path = await this.discover(grant.target);
    const fw = grant.target.firewall;
    const description = ruleDescription(grant.requestId, grant.expiresAt);
    // Behind a firewall, DNAT'd traffic reaches the VM from the firewall's subnet.
    const nsgSource = fw ? fw.subnetPrefix : grant.sourcePrefix;
    // A write still queued (throttling, retries, a busy NSG) when the grant's time is up is not
    // made: a rule must not open after its grant expired.
    const unexpired = <T>(write: () => T): T => {
      if (grant.expiresAt <= Date.now()) throw new Error(`the grant expired (${new Date(grant.expiresAt).toISOString()}) before its rule could be written`);
      return write();
    };
    const writes = path.nsgs.map((nsg) => this.enqueue(nsg, (doc) => unexpired(() => this.addNsgRules(nsg, doc as NetworkSecurityGroup, grant.ports, nsgSource, path.privateIps, description))));
    if (fw) {
      const res = dnatResourceOf(fw);
      writes.push(this.enqueue(res, (doc) => unexpired(() => this.addDnatRules(res, doc, fw, grant.requestId, grant.ports, grant.sourcePrefix, path.privateIps[0]!, description))));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // All or nothing: a grant open on one resource of the path but not another is closed again.
      await this.close(grant.requestId, grant.target).catch((err: unknown) => this.log('azure: could not roll back a partial grant; the reconciler will', { request: grant.requestId, err }));
      throw failed.reason;
    }
    return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  async close(requestId: string, target: Target): Promise<AppliedRule[]> {
    const removed = await Promise.all(this.resourcesOf(await this.discover(target), target).map((res) => this.enqueue(res, (doc) => this.removeRules(res, doc, ownedBy(requestId)))));
    return removed.flat();
  }

  async list(): Promise<AppliedRule[]> {
    const resources = new Set<string>();
    // Targets are discovered side by side (a fresh replica has no cached paths yet).
    await Promise.all(
      this.opts.targets().map(async (t) => {
        try {
          for (const r of this.resourcesOf(await this.discover(t), t)) resources.add(r);
        } catch (err) {
          if (!(err instanceof UnsupportedTargetError)) this.log('azure: discovery failed while listing rules', { target: t.name, err });
        }
      }),
    );
    const docs = await Promise.all([...resources].map(async (res) => this.ownedRules(res, (await this.read(res)).doc)));
    return docs.flat();
  }

  async remove(rules: AppliedRule[]): Promise<AppliedRule[]> {
    const byScope = new Map<string, Set<string>>();
    for (const r of rules) byScope.set(r.scope, (byScope.get(r.scope) ?? new Set()).add(r.name));
    const removed = await Promise.all(
      [...byScope].map(([res, names]) => this.enqueue(res, (doc) => this.removeRules(res, doc, (r) => names.has(r.name ?? '') && parseRuleDescription(r.description) !== null))),
    );
    return removed.flat();
  }

  async updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<void> {
    const description = ruleDescription(requestId, expiresAt);
    const mine = ownedBy(requestId);
    await Promise.all(
      this.resourcesOf(await this.discover(target), target).map((res) =>
        this.enqueue(res, (doc) => {
          let changed = false;
          for (const r of this.ruleList(res, doc)) {
            if (mine(r) && r.description !== description) {
              r.description = description;
              changed = true;
            }
          }
          return { results: [], changed };
        }),
      ),
    );
  }

  async inventory(): Promise<Array<{ id: string; name: string; reason?: string }>> {
    const subs = new Set([...(this.opts.subscriptions ?? []), ...this.opts.targets().map((t) => parseArmId(t.id).subscription)]);
    const out: Array<{ id: string; name: string; reason?: string }> = [];
    for (const sub of subs) {
      for await (const vm of this.client(sub).compute.virtualMachines.listAll()) {
        if (!vm.id || !vm.name) continue;
        try {
          await this.discover({ name: vm.name, id: vm.id, os: 'linux' });
          out.push({ id: vm.id, name: vm.name });
        } catch (err) {
          if (err instanceof UnsupportedTargetError) out.push({ id: vm.id, name: vm.name, reason: err.message.replace(/^.*?: /, '') });
          else throw err;
        }
      }
    }
    return out;
  }

  async enforce(target: Target, ports: PortSpec[]): Promise<AppliedRule[]> {
    const path = await this.discover(target, true);
    const [lo, hi] = this.opts.denyPriorityRange ?? [4000, 4096];
    const written = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueue(nsg, (doc) => {
          const rules = ((doc as NetworkSecurityGroup).securityRules ??= []);
          const used = new Set(rules.filter((r) => (r.direction ?? 'Inbound') === 'Inbound').map((r) => r.priority));
          const results: AppliedRule[] = [];
          for (const p of ports) {
            if (rules.some((r) => denies(r, p, path.privateIps))) continue; // an equivalent deny exists (ours or anyone's)
            let priority = hi;
            while (used.has(priority) && priority >= lo) priority--;
            if (priority < lo) throw new NoFreePriorityError(nsg, [lo, hi]);
            used.add(priority);
            const rule: SecurityRule = {
              name: `jit-deny-${target.name}-${p.port}${p.protocol === 'tcp' ? '' : `-${p.protocol === '*' ? 'any' : p.protocol}`}`,
              priority,
              direction: 'Inbound',
              access: 'Deny',
              protocol: armProtocol(p.protocol),
              sourceAddressPrefix: '*',
              sourcePortRange: '*',
              ...(path.privateIps.length === 1 ? { destinationAddressPrefix: path.privateIps[0]! } : { destinationAddressPrefixes: path.privateIps }),
              destinationPortRange: String(p.port),
              description: `${DENY_MARK} target=${target.name}`,
            };
            rules.push(rule);
            results.push(denyApplied(nsg, rule));
          }
          return { results, changed: results.length > 0 };
        }),
      ),
    );
    return written.flat();
  }

  async unenforce(target: Target): Promise<AppliedRule[]> {
    const path = await this.discover(target, true);
    const removed = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueue(nsg, (doc) => {
          const d = doc as NetworkSecurityGroup;
          const mine = (r: SecurityRule) => Boolean(r.name?.startsWith('jit-deny-')) && r.description === `${DENY_MARK} target=${target.name}`;
          const results = (d.securityRules ?? []).filter(mine).map((r) => denyApplied(nsg, r));
          d.securityRules = (d.securityRules ?? []).filter((r) => !mine(r));
          return { results, changed: results.length > 0 };
        }),
      ),
    );
    return removed.flat();
  }

  private resourcesOf(path: NetworkPath, target: Target): string[] {
    return [...path.nsgs, ...(target.firewall ? [dnatResourceOf(target.firewall)] : [])];
  }

  // ------------------------------------------------------------------ edits of resource documents

  private addNsgRules(nsgId: string, doc: NetworkSecurityGroup, ports: PortSpec[], source: string, ips: string[], description: string): { results: AppliedRule[]; changed: boolean } {
    const rules = (doc.securityRules ??= []);
    const used = new Set(rules.filter((r) => (r.direction ?? 'Inbound') === 'Inbound').map((r) => r.priority));
    const toAdd: SecurityRule[] = [];
    const results: AppliedRule[] = [];
    const requestId = parseRuleDescription(description)!.requestId;
    for (const p of ports) {
      const name = ruleName(requestId, p.port, p.protocol);
      const existing = rules.find((r) => r.name === name);
      if (existing) {
        // Idempotent by name: a retried open finds its rule already there.
        const applied = this.nsgApplied(nsgId, existing);
        if (applied) results.push(applied);
        continue;
      }
      let priority = this.range[0];
      while (used.has(priority) && priority <= this.range[1]) priority++;
      if (priority > this.range[1]) throw new NoFreePriorityError(nsgId, this.range);
      used.add(priority);
      toAdd.push({
        name,
        priority,
        direction: 'Inbound',
        access: 'Allow',
        protocol: armProtocol(p.protocol),
        sourceAddressPrefix: source,
        sourcePortRange: '*',
        ...(ips.length === 1 ? { destinationAddressPrefix: ips[0]! } : { destinationAddressPrefixes: ips }),
        destinationPortRange: String(p.port),
        description,
      });
    }
    rules.push(...toAdd);
    results.push(...toAdd.map((r) => this.nsgApplied(nsgId, r)!));
    return { results, changed: toAdd.length > 0 };
  }

  private addDnatRules(
    resId: string,
    doc: ResourceDoc,
    fw: FirewallRoute,
    requestId: string,
    ports: PortSpec[],
    source: string,
    vmIp: string,
    description: string,
  ): { results: AppliedRule[]; changed: boolean } {
    const existingRules = this.ruleList(resId, doc) as Array<AzureFirewallNatRule | NatRule>;
    const usedPorts = new Set(
      existingRules.filter((r) => (r.destinationAddresses ?? []).includes(fw.publicIp) || (r.destinationAddresses ?? []).includes('*')).flatMap((r) => (r.destinationPorts ?? []).map(Number)),
    );
    const pick = () => {
      for (let p = fw.portPool[0]; p <= fw.portPool[1]; p++) if (!usedPorts.has(p)) return usedPorts.add(p), p;
      throw new NoFreePortError(resId, fw.portPool);
    };
    const adds: Array<{ name: string; publicPort: number; p: PortSpec; priority: number }> = [];
    const results: AppliedRule[] = [];
    const collection = this.dnatCollection(resId, doc, true)!;
    for (const p of ports) {
      const name = ruleName(requestId, p.port, p.protocol);
      const existing = existingRules.find((r) => r.name === name);
      if (existing) {
        const applied = this.dnatApplied(resId, existing, collection.priority ?? 0);
        if (applied) results.push(applied);
        continue;
      }
      adds.push({ name, publicPort: pick(), p, priority: collection.priority ?? 0 });
    }
    const srcs = [source === '*' ? '*' : source];
    for (const a of adds) {
      const common = { name: a.name, description, sourceAddresses: srcs, destinationAddresses: [fw.publicIp], destinationPorts: [String(a.publicPort)], translatedAddress: vmIp, translatedPort: String(a.p.port) };
      const proto = a.p.protocol === 'udp' ? 'UDP' : 'TCP';
      const rule = kindOf(resId) === 'rcg' ? ({ ruleType: 'NatRule', ipProtocols: [proto], ...common } as NatRule) : ({ protocols: [proto], ...common } as AzureFirewallNatRule);
      (collection.rules as Array<AzureFirewallNatRule | NatRule>).push(rule);
      results.push(this.dnatApplied(resId, rule, collection.priority ?? 0)!);
    }
    return { results, changed: adds.length > 0 };
  }

  private removeRules(resId: string, doc: ResourceDoc, match: (r: { name?: string; description?: string }) => boolean): { results: AppliedRule[]; changed: boolean } {
    const results: AppliedRule[] = [];
    const kind = kindOf(resId);
    if (kind === 'nsg') {
      const nsg = doc as NetworkSecurityGroup;
      const keep: SecurityRule[] = [];
      for (const r of nsg.securityRules ?? []) {
        const applied = match(r) ? this.nsgApplied(resId, r) : null;
        if (applied) results.push(applied);
        else keep.push(r);
      }
      nsg.securityRules = keep;
    } else {
      const collection = this.dnatCollection(resId, doc, false);
      if (collection) {
        const keep: Array<AzureFirewallNatRule | NatRule> = [];
        for (const r of (collection.rules ?? []) as Array<AzureFirewallNatRule | NatRule>) {
          const applied = match(r) ? this.dnatApplied(resId, r, collection.priority ?? 0) : null;
          if (applied) results.push(applied);
          else keep.push(r);
        }
        collection.rules = keep as never;
      }
    }
    return { results, changed: results.length > 0 };
  }

  /** The bot's own DNAT rule collection (created on first use), classic or Firewall Policy. */
  private dnatCollection(resId: string, doc: ResourceDoc, create: boolean): { priority?: number; rules?: unknown[] } | undefined {
    if (kindOf(resId) === 'rcg') {
      const group = doc as FirewallPolicyRuleCollectionGroup;
      const list = (group.ruleCollections ??= []);
      let c = list.find((x) => x.name === DNAT_COLLECTION) as FirewallPolicyNatRuleCollection | undefined;
      if (!c && create) {
        const used = new Set(list.map((x) => x.priority));
        let priority = 100;
        while (used.has(priority)) priority++;
        c = { ruleCollectionType: 'FirewallPolicyNatRuleCollection', name: DNAT_COLLECTION, priority, action: { type: 'DNAT' }, rules: [] };
        list.push(c);
      }
      if (c) c.rules ??= [];
      return c;
    }
    const fwDoc = doc as AzureFirewall;
    const list = (fwDoc.natRuleCollections ??= []);
    let c = list.find((x) => x.name === DNAT_COLLECTION);
    if (!c && create) {
      const used = new Set(list.map((x) => x.priority));
      let priority = 100;
      while (used.has(priority)) priority++;
      c = { name: DNAT_COLLECTION, priority, action: { type: 'Dnat' }, rules: [] };
      list.push(c);
    }
    if (c) c.rules ??= [];
    return c;
  }

  /** Every rule of a document that could be ours (NSG rules, or the DNAT collection's rules). */
  private ruleList(resId: string, doc: ResourceDoc): Array<{ name?: string; description?: string; destinationAddresses?: string[]; destinationPorts?: string[] }> {
    const kind = kindOf(resId);
    if (kind === 'nsg') return (doc as NetworkSecurityGroup).securityRules ?? [];
    if (kind === 'rcg') {
      return ((doc as FirewallPolicyRuleCollectionGroup).ruleCollections ?? []).flatMap((c) => ((c as FirewallPolicyNatRuleCollection).rules ?? []) as NatRule[]);
    }
    return ((doc as AzureFirewall).natRuleCollections ?? []).flatMap((c) => c.rules ?? []);
  }

  private ownedRules(resId: string, doc: ResourceDoc): AppliedRule[] {
    if (kindOf(resId) === 'nsg') return ((doc as NetworkSecurityGroup).securityRules ?? []).flatMap((r) => this.nsgApplied(resId, r) ?? []);
    const c = this.dnatCollection(resId, doc, false);
    return ((c?.rules ?? []) as Array<AzureFirewallNatRule | NatRule>).flatMap((r) => this.dnatApplied(resId, r, c?.priority ?? 0) ?? []);
  }

  private nsgApplied(nsgId: string, r: SecurityRule): AppliedRule | null {
    const owner = parseRuleDescription(r.description);
    if (!owner || !r.name?.startsWith('jit-')) return null;
    return {
      name: r.name,
      scope: nsgId,
      priority: r.priority ?? 0,
      direction: 'Inbound',
      access: 'Allow',
      protocol: jitProtocol(r.protocol),
      sourcePrefix: r.sourceAddressPrefix ?? r.sourceAddressPrefixes?.join(',') ?? '*',
      destinationPort: Number(r.destinationPortRange ?? 0),
      description: r.description ?? '',
      requestId: owner.requestId,
      expiresAt: owner.expiresAt,
    };
  }

  private dnatApplied(resId: string, r: AzureFirewallNatRule | NatRule, priority: number): AppliedRule | null {
    const owner = parseRuleDescription(r.description);
    if (!owner || !r.name?.startsWith('jit-')) return null;
    const protos = 'ipProtocols' in r ? r.ipProtocols : (r as AzureFirewallNatRule).protocols;
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

  // ------------------------------------------------------------------ the per-resource writer

  private enqueue(resourceId: string, mutate: Change['mutate']): Promise<AppliedRule[]> {
    const key = resourceId.toLowerCase();
    let q = this.queues.get(key);
    if (!q) {
      q = { changes: [], running: false };
      this.queues.set(key, q);
    }
    const queue = q;
    const promise = new Promise<AppliedRule[]>((resolve, reject) => queue.changes.push({ mutate, resolve, reject }));
    if (!queue.running) void this.drain(resourceId, queue);
    return promise;
  }

  private async drain(resourceId: string, q: { changes: Change[]; running: boolean }): Promise<void> {
    q.running = true;
    try {
      while (q.changes.length > 0) {
        // Everything queued while the previous write ran goes into this one.
        const batch = q.changes.splice(0);
        try {
          const outcome = await this.writeBatch(resourceId, batch);
          batch.forEach((c, i) => {
            const o = outcome[i]!;
            if ('error' in o) c.reject(o.error);
            else c.resolve(o.results);
          });
        } catch (err) {
          for (const c of batch) c.reject(err);
        }
      }
    } finally {
      q.running = false;
    }
  }

  private read(resourceId: string): Promise<{ doc: ResourceDoc; etag?: string }> {
    return this.timed(`reading ${parseArmId(resourceId).name}`, (abortSignal) => this.readOnce(resourceId, abortSignal));
  }

  private async readOnce(resourceId: string, abortSignal: AbortSignal): Promise<{ doc: ResourceDoc; etag?: string }> {
    const id = parseArmId(resourceId);
    const { network } = this.client(id.subscription);
    switch (kindOf(resourceId)) {
      case 'nsg': {
        const doc = await network.networkSecurityGroups.get(id.resourceGroup, id.name, { abortSignal });
        return { doc, ...(doc.etag ? { etag: doc.etag } : {}) };
      }
      case 'firewall': {
        const doc = await network.azureFirewalls.get(id.resourceGroup, id.name, { abortSignal });
        return { doc, ...(doc.etag ? { etag: doc.etag } : {}) };
      }
      case 'rcg': {
        try {
          const doc = await network.firewallPolicyRuleCollectionGroups.get(id.resourceGroup, id.parent!, id.name, { abortSignal });
          return { doc, ...(doc.etag ? { etag: doc.etag } : {}) };
        } catch (err) {
          // The group is the bot's own: created on the first grant.
          if (errorInfo(err).status === 404) return { doc: { priority: 65000, ruleCollections: [] } };
          throw err;
        }
      }
    }
  }

  private write(resourceId: string, doc: ResourceDoc, etag: string | undefined): Promise<void> {
    return this.timed(`writing ${parseArmId(resourceId).name}`, (abortSignal) => this.writeOnce(resourceId, doc, etag, abortSignal), 'write');
  }

  private async writeOnce(resourceId: string, doc: ResourceDoc, etag: string | undefined, abortSignal: AbortSignal): Promise<void> {
    const id = parseArmId(resourceId);
    const { network } = this.client(id.subscription);
    const options = { abortSignal, updateIntervalInMs: this.pollMs, ...(etag ? { requestOptions: { customHeaders: { 'If-Match': etag } } } : {}) };
    this.stats.puts++;
    switch (kindOf(resourceId)) {
      case 'nsg': {
        const nsg = doc as NetworkSecurityGroup;
        // Everything but the rule list is written back as read: notably flushConnection, so removing
        // a rule keeps established connections unless the NSG's owner chose otherwise.
        await network.networkSecurityGroups.beginCreateOrUpdateAndWait(
          id.resourceGroup,
          id.name,
          { location: nsg.location, tags: nsg.tags, securityRules: nsg.securityRules, ...(nsg.flushConnection !== undefined ? { flushConnection: nsg.flushConnection } : {}) },
          options,
        );
        return;
      }
      case 'firewall':
        await network.azureFirewalls.beginCreateOrUpdateAndWait(id.resourceGroup, id.name, doc as AzureFirewall, options);
        return;
      case 'rcg': {
        const g = doc as FirewallPolicyRuleCollectionGroup;
        await network.firewallPolicyRuleCollectionGroups.beginCreateOrUpdateAndWait(id.resourceGroup, id.parent!, id.name, { priority: g.priority, ruleCollections: g.ruleCollections }, options);
        return;
      }
    }
  }

  /** One read-modify-write for a batch; each change gets its results or its own refusal. */
  private async writeBatch(resourceId: string, batch: Change[]): Promise<Array<{ results: AppliedRule[] } | { error: unknown }>> {
    const name = parseArmId(resourceId).name;
    const deadline = Date.now() + this.deadlineMs;
    let attempt = 0;
    for (;;) {
      const release = await this.lock(resourceId, deadline);
      try {
        const { doc, etag } = await this.read(resourceId);
        let changed = false;
        const outcome = batch.map((c) => {
          try {
            const r = c.mutate(doc);
            changed ||= r.changed;
            return { results: r.results };
          } catch (error) {
            return { error };
          }
        });
        if (changed) await this.write(resourceId, doc, etag);
        return outcome;
      } catch (err) {
        const info = errorInfo(err);
        const reread = info.status === 412 || info.code === 'SecurityRuleConflict' || info.code === 'PreconditionFailed';
        const retryable = reread || info.status === 409 || info.status === 429 || (info.status ?? 0) >= 500 || info.status === undefined;
        if (info.status === 409) this.stats.conflicts409++;
        if (info.status === 412) this.stats.preconditionFailed412++;
        if (info.status === 429) this.stats.throttled429++;
        if ((info.status ?? 0) >= 500) this.stats.serverErrors++;
        if (!retryable) throw err;
        attempt++;
        const backoff = reread ? Math.random() * 50 : Math.min(10_000, 250 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
        const wait = Math.max(info.retryAfterMs ?? 0, backoff);
        if (Date.now() + wait > deadline) {
          throw new Error(`writing ${name} failed after ${attempt} attempts (${info.code ?? info.status ?? 'network error'}); deadline of ${Math.round(this.deadlineMs / 1000)} s reached`);
        }
        this.stats.retries++;
        this.log('azure: write retried', { resource: name, status: info.status, code: info.code, waitMs: Math.round(wait) });
        await release();
        await this.sleep(wait);
      } finally {
        await release();
      }
    }
  }

  /**
   * A Redis lock per resource so replicas take turns; released by token. It lives 1.5 s and is
   * renewed every 0.5 s while held, so a replica killed mid-write blocks the others for at most
   * 1.5 s. Correctness does not rest on it (every write carries If-Match): it only spares ARM a
   * storm of 412s. No Redis: in-process only.
   */
  private async lock(resourceId: string, deadline: number): Promise<() => Promise<void>> {
    const redis = this.opts.redis;
    if (!redis) return async () => {};
    const key = `${this.opts.lockPrefix ?? 'jit'}:azure:lock:${resourceId.toLowerCase()}`;
    const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (;;) {
      if ((await redis.set(key, token, 'PX', LOCK_TTL_MS, 'NX')) === 'OK') break;
      if (Date.now() > deadline) throw new Error(`could not get the write lock for ${resourceId.split('/').pop()} before the deadline`);
      await this.sleep(20 + Math.random() * 30);
    }
    const renew = setInterval(() => {
      void redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end", 1, key, token, LOCK_TTL_MS).catch(() => 0);
    }, LOCK_TTL_MS / 3);
    renew.unref();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      await redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, token).catch(() => 0);
    };
  }
}

const LOCK_TTL_MS = 1500;

const DENY_MARK = 'jit-bot deny';

/** Does this rule already deny inbound traffic from anywhere to port `p` on all of these addresses? */
function denies(r: SecurityRule, p: PortSpec, ips: string[]): boolean {
  if (r.access !== 'Deny' || (r.direction ?? 'Inbound') !== 'Inbound') return false;
  const dests = [r.destinationAddressPrefix, ...(r.destinationAddressPrefixes ?? [])].filter((x): x is string => Boolean(x));
  const anyDest = dests.some((d) => d === '*' || d === 'VirtualNetwork');
  if (!anyDest && !ips.every((ip) => dests.some((d) => d === ip || d === `${ip}/32` || inCidr(ip, d)))) return false;
  const anySource = [r.sourceAddressPrefix, ...(r.sourceAddressPrefixes ?? [])].some((s) => s === '*' || s === 'Internet' || s === '0.0.0.0/0');
  const protoOk = r.protocol === '*' || r.protocol?.toLowerCase() === (p.protocol === '*' ? '*' : p.protocol);
  const ranges = [r.destinationPortRange, ...(r.destinationPortRanges ?? [])].filter((x): x is string => Boolean(x));
  const portOk = ranges.some((range) => {
    if (range === '*') return true;
    const [a, b] = range.split('-').map(Number);
    return b === undefined ? a === p.port : a! <= p.port && p.port <= b;
  });
  return anySource && protoOk && portOk;
}

function inCidr(ip: string, cidr: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const a = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m || !a) return false;
  const num = (x: RegExpExecArray) => ((Number(x[1]) << 24) | (Number(x[2]) << 16) | (Number(x[3]) << 8) | Number(x[4])) >>> 0;
  const bits = Number(m[5]);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (num(a) & mask) === (num(m) & mask);
}

function denyApplied(nsgId: string, r: SecurityRule): AppliedRule {
  return {
    name: r.name ?? '', scope: nsgId, priority: r.priority ?? 0, direction: 'Inbound', access: 'Deny', protocol: jitProtocol(r.protocol),
    sourcePrefix: '*', destinationPort: Number(r.destinationPortRange ?? 0), description: r.description ?? '', requestId: '', expiresAt: 0,
  };
}

export class NoFreePortError extends Error {
  constructor(resId: string, pool: [number, number]) {
    super(`no free port in ${pool[0]}-${pool[1]} on ${resId.split('/').pop()}; widen the firewall's port pool in the policy file`);
    this.name = 'NoFreePortError';
  }
}

export class NoFreePriorityError extends Error {
  constructor(nsgId: string, range: [number, number]) {
    super(`no free priority in ${range[0]}-${range[1]} on ${nsgId.split('/').pop()}; raise JIT_NSG_PRIORITY_RANGE or remove stale rules`);
    this.name = 'NoFreePriorityError';
  }
}
