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
import { NetworkManagementClient, type NetworkSecurityGroup, type SecurityRule } from '@azure/arm-network';
import type { Redis } from 'ioredis';
import type { GrantSpec, NetworkGate } from '../../app/ports.js';
import type { AppliedRule, Protocol, Target } from '../../core/types.js';
import { parseRuleDescription, ruleDescription, ruleName } from '../simulated/gate.js';

export interface AzureGateOptions {
  credential: TokenCredential;
  /** ARM endpoint (sovereign clouds, the emulator); default https://management.azure.com. */
  endpoint?: string;
  /** Extra CA certificate(s) to trust for the ARM endpoint (a TLS-inspecting proxy, the emulator). */
  caCert?: string;
  /** Priorities the bot may use for Allow rules (default 100–199, as Azure JIT). */
  priorityRange?: [number, number];
  /** How long a write keeps retrying 409 / 429 / 5xx before the grant fails. */
  writeDeadlineMs?: number;
  /** LRO polling interval. */
  pollIntervalMs?: number;
  /** Cross-replica lock per NSG. */
  redis?: Redis;
  lockPrefix?: string;
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

interface Change {
  add: Array<{ rule: SecurityRule; requestId: string; expiresAt: number }>;
  remove: (rule: SecurityRule) => boolean;
  describe: Map<string, string>;
  resolve: (applied: AppliedRule[]) => void;
  reject: (err: unknown) => void;
}

const DISCOVERY_TTL_MS = 5 * 60_000;

const armProtocol = (p: Protocol): string => (p === 'tcp' ? 'Tcp' : p === 'udp' ? 'Udp' : '*');
const jitProtocol = (p: string | undefined): Protocol => (p?.toLowerCase() === 'tcp' ? 'tcp' : p?.toLowerCase() === 'udp' ? 'udp' : '*');

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
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Writes issued (PUTs) and their outcomes, for metrics and benchmarks. */
  readonly stats = { puts: 0, retries: 0, conflicts409: 0, preconditionFailed412: 0, throttled429: 0, serverErrors: 0 };

  constructor(private readonly opts: AzureGateOptions) {
    this.range = opts.priorityRange ?? [100, 199];
    this.deadlineMs = opts.writeDeadlineMs ?? 60_000;
    this.pollMs = opts.pollIntervalMs ?? 1000;
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

  // ------------------------------------------------------------------ discovery

  /** VM → NICs → their NSGs and their subnets' NSGs, and the private IPs. Cached for 5 minutes. */
  async discover(target: Target, fresh = false): Promise<NetworkPath> {
    const cached = this.paths.get(target.id.toLowerCase());
    if (cached && !fresh && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached;
    const vmId = parseArmId(target.id);
    const { compute } = this.client(vmId.subscription);
    const vm = await compute.virtualMachines.get(vmId.resourceGroup, vmId.name);
    const nicIds = (vm.networkProfile?.networkInterfaces ?? []).flatMap((n) => (n.id ? [n.id] : []));
    if (nicIds.length === 0) throw new UnsupportedTargetError(target.name, 'the VM has no network interface');
    const nicNsgs: string[] = [];
    const subnetIds = new Set<string>();
    const ips: string[] = [];
    for (const nicId of nicIds) {
      const id = parseArmId(nicId);
      const nic = await this.client(id.subscription).network.networkInterfaces.get(id.resourceGroup, id.name);
      if (nic.networkSecurityGroup?.id) nicNsgs.push(nic.networkSecurityGroup.id);
      for (const cfg of nic.ipConfigurations ?? []) {
        if (cfg.privateIPAddress) ips.push(cfg.privateIPAddress);
        if (cfg.subnet?.id) subnetIds.add(cfg.subnet.id);
      }
    }
    const subnetNsgs: string[] = [];
    for (const subnetId of subnetIds) {
      const id = parseArmId(subnetId);
      const subnet = await this.client(id.subscription).network.subnets.get(id.resourceGroup, id.parent!, id.name);
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
    const description = ruleDescription(grant.requestId, grant.expiresAt);
    const source = grant.sourcePrefix === '*' ? '*' : grant.sourcePrefix;
    const results = await Promise.allSettled(
      path.nsgs.map((nsg) =>
        this.enqueue(nsg, {
          add: grant.ports.map((p) => ({
            requestId: grant.requestId,
            expiresAt: grant.expiresAt,
            rule: {
              name: ruleName(grant.requestId, p.port, p.protocol),
              direction: 'Inbound',
              access: 'Allow',
              protocol: armProtocol(p.protocol),
              sourceAddressPrefix: source,
              sourcePortRange: '*',
              ...(path.privateIps.length === 1 ? { destinationAddressPrefix: path.privateIps[0]! } : { destinationAddressPrefixes: path.privateIps }),
              destinationPortRange: String(p.port),
              description,
            },
          })),
          remove: () => false,
          describe: new Map(),
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // All or nothing: a grant open on one NSG of the path but not the other is closed again.
      await this.close(grant.requestId, grant.target).catch((err: unknown) => this.log('azure: could not roll back a partial grant; the reconciler will', { request: grant.requestId, err }));
      throw failed.reason;
    }
    return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  async close(requestId: string, target: Target): Promise<AppliedRule[]> {
    const path = await this.discover(target);
    const prefix = `jit-${requestId}-`;
    const removed = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueue(nsg, { add: [], remove: (r) => Boolean(r.name?.startsWith(prefix)) && parseRuleDescription(r.description)?.requestId === requestId, describe: new Map() }),
      ),
    );
    return removed.flat();
  }

  async list(): Promise<AppliedRule[]> {
    const nsgs = new Set<string>();
    for (const t of this.opts.targets()) {
      try {
        for (const n of (await this.discover(t)).nsgs) nsgs.add(n);
      } catch (err) {
        if (!(err instanceof UnsupportedTargetError)) this.log('azure: discovery failed while listing rules', { target: t.name, err });
      }
    }
    const out: AppliedRule[] = [];
    for (const nsgId of nsgs) {
      const id = parseArmId(nsgId);
      const nsg = await this.client(id.subscription).network.networkSecurityGroups.get(id.resourceGroup, id.name);
      for (const r of nsg.securityRules ?? []) {
        const applied = this.toApplied(nsgId, r);
        if (applied) out.push(applied);
      }
    }
    return out;
  }

  async remove(rules: AppliedRule[]): Promise<AppliedRule[]> {
    const byNsg = new Map<string, Set<string>>();
    for (const r of rules) byNsg.set(r.scope, (byNsg.get(r.scope) ?? new Set()).add(r.name));
    const removed = await Promise.all(
      [...byNsg].map(([nsg, names]) => this.enqueue(nsg, { add: [], remove: (r) => names.has(r.name ?? '') && parseRuleDescription(r.description) !== null, describe: new Map() })),
    );
    return removed.flat();
  }

  async updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<void> {
    const path = await this.discover(target);
    const description = ruleDescription(requestId, expiresAt);
    await Promise.all(
      path.nsgs.map(async (nsg) => {
        const id = parseArmId(nsg);
        const current = await this.client(id.subscription).network.networkSecurityGroups.get(id.resourceGroup, id.name);
        const mine = (current.securityRules ?? []).filter((r) => parseRuleDescription(r.description)?.requestId === requestId);
        if (mine.length === 0) return;
        await this.enqueue(nsg, { add: [], remove: () => false, describe: new Map(mine.map((r) => [r.name!, description])) });
      }),
    );
  }

  private toApplied(nsgId: string, r: SecurityRule): AppliedRule | null {
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

  // ------------------------------------------------------------------ the per-NSG writer

  private enqueue(nsgId: string, change: Omit<Change, 'resolve' | 'reject'>): Promise<AppliedRule[]> {
    const key = nsgId.toLowerCase();
    let q = this.queues.get(key);
    if (!q) {
      q = { changes: [], running: false };
      this.queues.set(key, q);
    }
    const promise = new Promise<AppliedRule[]>((resolve, reject) => q.changes.push({ ...change, resolve, reject }));
    if (!q.running) void this.drain(nsgId, q);
    return promise;
  }

  private async drain(nsgId: string, q: { changes: Change[]; running: boolean }): Promise<void> {
    q.running = true;
    try {
      while (q.changes.length > 0) {
        // Everything queued while the previous write ran goes into this one.
        const batch = q.changes.splice(0);
        try {
          const results = await this.writeBatch(nsgId, batch);
          batch.forEach((c, i) => c.resolve(results[i]!));
        } catch (err) {
          for (const c of batch) c.reject(err);
        }
      }
    } finally {
      q.running = false;
    }
  }

  private async writeBatch(nsgId: string, batch: Change[]): Promise<AppliedRule[][]> {
    const id = parseArmId(nsgId);
    const { network } = this.client(id.subscription);
    const deadline = Date.now() + this.deadlineMs;
    let attempt = 0;
    for (;;) {
      const release = await this.lock(nsgId, deadline);
      try {
        const current = await network.networkSecurityGroups.get(id.resourceGroup, id.name);
        const { next, results, changed } = this.apply(nsgId, current, batch);
        if (!changed) return results;
        this.stats.puts++;
        await network.networkSecurityGroups.beginCreateOrUpdateAndWait(id.resourceGroup, id.name, next, {
          updateIntervalInMs: this.pollMs,
          ...(current.etag ? { requestOptions: { customHeaders: { 'If-Match': current.etag } } } : {}),
        });
        return results;
      } catch (err) {
        const info = errorInfo(err);
        const reread = info.status === 412 || info.code === 'SecurityRuleConflict' || info.code === 'PreconditionFailed';
        const retryable = reread || info.status === 409 || info.status === 429 || (info.status ?? 0) >= 500 || info.status === undefined;
        if (info.status === 409) this.stats.conflicts409++;
        if (info.status === 412) this.stats.preconditionFailed412++;
        if (info.status === 429) this.stats.throttled429++;
        if ((info.status ?? 0) >= 500) this.stats.serverErrors++;
        if (err instanceof NoFreePriorityError || !retryable) throw err;
        attempt++;
        const backoff = reread ? Math.random() * 50 : Math.min(10_000, 250 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
        const wait = Math.max(info.retryAfterMs ?? 0, backoff);
        if (Date.now() + wait > deadline) {
          throw new Error(`writing ${id.name} failed after ${attempt} attempts (${info.code ?? info.status ?? 'network error'}); deadline of ${Math.round(this.deadlineMs / 1000)} s reached`);
        }
        this.stats.retries++;
        this.log('azure: NSG write retried', { nsg: id.name, status: info.status, code: info.code, waitMs: Math.round(wait) });
        await release();
        await this.sleep(wait);
        continue;
      } finally {
        await release();
      }
    }
  }

  /** Applies a batch of changes to an NSG read from ARM; picks free priorities for new rules. */
  private apply(nsgId: string, current: NetworkSecurityGroup, batch: Change[]): { next: NetworkSecurityGroup; results: AppliedRule[][]; changed: boolean } {
    let rules = [...(current.securityRules ?? [])];
    let changed = false;
    const results: AppliedRule[][] = batch.map(() => []);
    batch.forEach((c, i) => {
      const keep: SecurityRule[] = [];
      for (const r of rules) {
        if (c.remove(r)) {
          const applied = this.toApplied(nsgId, r);
          if (applied) results[i]!.push(applied);
          changed = true;
        } else keep.push(r);
      }
      rules = keep;
      for (const r of rules) {
        const d = r.name ? c.describe.get(r.name) : undefined;
        if (d !== undefined && r.description !== d) {
          r.description = d;
          changed = true;
        }
      }
    });
    const used = new Set(rules.filter((r) => (r.direction ?? 'Inbound') === 'Inbound').map((r) => r.priority));
    batch.forEach((c, i) => {
      for (const { rule } of c.add) {
        const existing = rules.find((r) => r.name === rule.name);
        if (existing) {
          // Idempotent by name: a retried open finds its rule already there.
          const applied = this.toApplied(nsgId, existing);
          if (applied) results[i]!.push(applied);
          continue;
        }
        let priority = this.range[0];
        while (used.has(priority) && priority <= this.range[1]) priority++;
        if (priority > this.range[1]) throw new NoFreePriorityError(nsgId, this.range);
        used.add(priority);
        const created: SecurityRule = { ...rule, priority };
        rules.push(created);
        changed = true;
        results[i]!.push(this.toApplied(nsgId, created)!);
      }
    });
    const next: NetworkSecurityGroup = { location: current.location, tags: current.tags, securityRules: rules };
    return { next, results, changed };
  }

  /** A Redis lock per NSG so replicas take turns; released by token. No Redis: in-process only. */
  private async lock(nsgId: string, deadline: number): Promise<() => Promise<void>> {
    const redis = this.opts.redis;
    if (!redis) return async () => {};
    const key = `${this.opts.lockPrefix ?? 'jit'}:azure:lock:${nsgId.toLowerCase()}`;
    const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (;;) {
      if ((await redis.set(key, token, 'PX', 30_000, 'NX')) === 'OK') break;
      if (Date.now() > deadline) throw new Error(`could not get the write lock for ${nsgId.split('/').pop()} before the deadline`);
      await this.sleep(20 + Math.random() * 30);
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, token).catch(() => 0);
    };
  }
}

export class NoFreePriorityError extends Error {
  constructor(nsgId: string, range: [number, number]) {
    super(`no free priority in ${range[0]}-${range[1]} on ${nsgId.split('/').pop()}; raise JIT_NSG_PRIORITY_RANGE or remove stale rules`);
    this.name = 'NoFreePriorityError';
  }
}
