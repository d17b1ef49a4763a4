// The Azure NetworkGate: every grant is an Allow-inbound rule per port (and address family) on each
// network security group in the VM's path (NIC NSGs and subnet NSGs: both must allow, as in
// Defender for Cloud's JIT), for the requester's source prefix to the VM's private IPs.
//
// How it writes (see docs/security.md, "The bot's Azure role", for why):
// - NSGs, `nsgWrites: 'auto'` (the default): every change queued for an NSG (closes first) is
//   planned on one read and written as ONE whole-NSG PUT with If-Match, followed to Succeeded (a
//   burst of N grants on one NSG: a few writes, not N). A whole-NSG PUT re-sends everyone's rules,
//   so ARM checks the role for networkSecurityGroups/write, linked access on every rule's
//   references (application security groups) and Azure Policy on every rule: where it refuses
//   (403 AuthorizationFailed / LinkedAuthorizationFailed, RequestDisallowedByPolicy) that NSG falls
//   back to child rules for an hour, and the same changes are applied that way at once.
// - NSGs, child rules (`nsgWrites: 'rules'`, and the fallback): only the bot's own rules, as child
//   `securityRules` PUT / DELETE operations. Other people's rules are never re-sent, so ARM does
//   not re-check linked access on their references, an Azure Policy on a foreign rule does not
//   block the bot, and another writer's edits to other rules cannot race ours. One NSG accepts one
//   operation at a time: changes for the same NSG queue here (a Redis lock per NSG across
//   replicas) and run one after another, planned from one read of the NSG (free priorities).
// - Azure Firewall (classic) and Firewall Policy rule collection groups: read-modify-write of the
//   whole document with If-Match (a concurrent change is re-read, never overwritten), serialized
//   per firewall and per firewall POLICY (ARM runs one operation per policy), queued behind an
//   update already in flight, with a deadline of their own (firewall updates take minutes).
// - Every write is followed to its terminal state and counts only at `Succeeded`. ARM's codes are
//   kept: busy / throttled / canceled operations are retried with jittered backoff (Retry-After
//   honoured) until the kind's deadline; locks, authorization and validation errors fail at once.
// - close() works from what was written (the request's stored rules and their resources), not by
//   re-discovering the VM; the reconciler reads every NSG, firewall and rule collection group in
//   the managed scopes for the bot's rules, so rules outlive neither their VM nor their target.
import type { CloseTiming, GrantSpec, NetworkGate } from '../../app/ports.js';
import type { AppliedRule, NetworkTarget, PortSpec, Target } from '../../core/types.js';
import { parseRuleDescription, ruleDescription } from '../../core/rule-tags.js';
import { COMPUTE_API, NETWORK_API, type ArmClient, type ArmDoc, type ArmStats } from './arm.js';
import { connectArm } from './arm-connect.js';
import { CloseTimes } from './close-timing.js';
import type { AzureGateOptions } from './gate-options.js';
import { Inventory } from './inventory.js';
import { RuleSweep } from './scope-sweep.js';
import { WriteLatency } from './latency.js';
import { ArmWriter, type ChangeTag, type NsgPlan } from './arm-writer.js';
import { addNsgRules, planDenyRules, planUndeny, removeNsgRules, winningAllows } from './nsg-plans.js';
import { DISCOVERY_TTL_MS, UnsupportedTargetError, kindOf, nicApi, nicConfigs, parseArmId, pathOf, type InventoryRow, type NetworkPath } from './discovery.js';
import { FirewallRoutes, addDnatRules, dnatResourceOf, natRuleList, removeDnatRules, type DocPlan } from './firewall-dnat.js';
import { foreignApplied, nsgRulesOf, planAllowRules, type WireRule } from './nsg-rules.js';

export { ArmError, errorInfo } from './arm-errors.js';
export type { AzureGateOptions } from './gate-options.js';
export { prioritize } from './arm-writer.js';
export { GRAPH_SCALE_SET_INSTANCES, GRAPH_SUBNET_NSGS, GRAPH_VMS_NICS_SCALE_SETS, UnsupportedTargetError, kindOf, parseArmId, type InventoryRow, type NetworkPath } from './discovery.js';
export { DnatLimitError, NoFreePortError, dnatResourceOf } from './firewall-dnat.js';
export { NoFreePriorityError, denyRuleName, type RuleProps, type WireRule } from './nsg-rules.js';

/** Matches a rule this bot wrote for `requestId` (name and description both say so). */
const ownedBy = (requestId: string) => (r: { name?: string; description?: string }) =>
  Boolean(r.name?.startsWith(`jit-${requestId}-`)) && parseRuleDescription(r.description)?.requestId === requestId;

export class AzureGate implements NetworkGate {
  private readonly arm: ArmClient;
  private paths = new Map<string, NetworkPath>();
  private readonly range: [number, number];
  private readonly deadlineMs: number;
  private readonly fwDeadlineMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;
  /** How long writes take per NSG / firewall / firewall policy, queued to Succeeded (closeLeadMs). */
  readonly latency = new WriteLatency();
  /** The bot's rules last seen per NSG, held closes and the close lead (close-timing.ts). */
  private readonly times = new CloseTimes({ latency: this.latency, nsgBatched: (id) => this.nsgBatched(id), now: () => this.now() });

  constructor(private readonly opts: AzureGateOptions) {
    this.range = opts.priorityRange ?? [100, 199];
    this.deadlineMs = opts.writeDeadlineMs ?? 60_000;
    this.fwDeadlineMs = opts.firewallDeadlineMs ?? 30 * 60_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.log = opts.log ?? (() => {});
    this.arm = connectArm(opts, opts.pollIntervalMs ?? 1000, this.sleep, this.log);
    this.writer = new ArmWriter({
      arm: this.arm,
      latency: this.latency,
      nsgDeadlineMs: this.deadlineMs,
      fwDeadlineMs: this.fwDeadlineMs,
      ...(opts.nsgWrites ? { nsgWrites: opts.nsgWrites } : {}),
      ...(opts.gather ? { gather: opts.gather } : {}),
      ...(opts.redis ? { redis: opts.redis } : {}),
      ...(opts.lockPrefix ? { lockPrefix: opts.lockPrefix } : {}),
      sleep: this.sleep,
      log: this.log,
      onWritten: (id) => this.sweep.written(id),
      onNsgRead: (id, doc) => this.times.noteRules(id, doc),
      now: () => this.now(),
    });
    this.routes = new FirewallRoutes(this.arm);
    this.sweep = new RuleSweep({
      arm: this.arm,
      targets: () => this.opts.targets(),
      resourcesOf: async (t) => this.resourcesOf(await this.discover(t), t),
      subscriptions: () => this.subscriptions(),
      readRcg: (id) => this.writer.readRcg(id),
      noteRules: (id, doc) => this.times.noteRules(id, doc),
      now: () => this.now(),
      ...(this.opts.scopeSweepIntervalMs !== undefined ? { scopeSweepIntervalMs: this.opts.scopeSweepIntervalMs } : {}),
      log: this.log,
    });
    this.inv = new Inventory({
      arm: this.arm,
      subscriptions: () => this.subscriptions(),
      discover: (t, fresh) => this.discover(t, fresh),
      cachePath: (vmId, path) => void this.paths.set(vmId.toLowerCase(), path),
      log: this.log,
    });
  }
  private readonly inv: Inventory;
  /** The reconciler's reads (scope-sweep.ts). */
  private readonly sweep: RuleSweep;
  private readonly now = (): number => this.opts.clock?.now() ?? Date.now();
  /** Queues, locks and retries per resource (arm-writer.ts), NSG writes (nsg-writer.ts). */
  private readonly writer: ArmWriter;

  /** Whole-NSG writes ARM refused (each NSG then fell back to child rules), by ARM's code. */
  get nsgFallbacks(): Record<string, number> {
    return this.writer.nsgFallbacks;
  }

  /** Whether this NSG's changes go as one whole-NSG PUT (JIT_NSG_WRITES=auto, not refused lately). */
  nsgBatched(nsgId: string): boolean {
    return this.writer.nsgBatched(nsgId);
  }
  /** Firewall targets' routes checked, and what DNAT rules outside the bot's group take of the limit. */
  private readonly routes: FirewallRoutes;

  /** ARM calls and their outcomes, for metrics and benchmarks. */
  get stats(): ArmStats {
    return this.arm.stats;
  }

  /** ARM's answers since start, by call (read / write) and answer class (jit_network_arm_answers_total). */
  armAnswers(): ReturnType<ArmClient['armAnswers']> {
    return this.arm.armAnswers();
  }

  // ------------------------------------------------------------------ discovery

  /** VM → NICs → their NSGs and their subnets' NSGs, and the private IPs. Cached for 5 minutes. */
  async discover(target: NetworkTarget, fresh = false): Promise<NetworkPath> {
    const cached = this.paths.get(target.id.toLowerCase());
    if (cached && !fresh && this.now() - cached.at < DISCOVERY_TTL_MS) return cached;
    const vm = (await this.arm.get(target.id, COMPUTE_API)).doc;
    const nicRefs = (((vm.properties?.networkProfile as { networkInterfaces?: Array<{ id?: string; properties?: { primary?: boolean } }> } | undefined)?.networkInterfaces) ?? []).filter((n) => n.id);
    if (nicRefs.length === 0) throw new UnsupportedTargetError(target.name, 'the VM has no network interface');
    const nics = await Promise.all(nicRefs.map(async (ref) => ({ primary: ref.properties?.primary ?? nicRefs.length === 1, doc: (await this.arm.get(ref.id!, nicApi(ref.id!))).doc })));
    const subnetIds = new Set<string>();
    for (const nic of nics) for (const cfg of nicConfigs(nic.doc)) if (cfg.subnet) subnetIds.add(cfg.subnet);
    const subnets = await Promise.all([...subnetIds].map(async (id) => (await this.arm.get(id, NETWORK_API)).doc));
    const path = pathOf(
      target.name,
      nics,
      new Map(subnets.map((s) => [String(s.id ?? '').toLowerCase(), s])),
    );
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
      if (grant.expiresAt <= this.now()) throw new Error(`the grant expired (${new Date(grant.expiresAt).toISOString()}) before its rule could be written`);
      return write();
    };
    const nsgRules = planAllowRules(grant.target.name, grant.requestId, grant.ports, nsgSource, path.privateIps, description);
    if (fw) await this.routes.check(grant.target.name, fw);
    // What the policy's other rule collection groups (and its base policies') already take of the 250.
    const outside = fw?.policyId ? await this.routes.outside(fw) : undefined;
    const tag = { requests: [grant.requestId] };
    const writes = path.nsgs.map((nsg) => this.enqueueNsg(nsg, (doc) => unexpired(() => addNsgRules(nsg, doc, nsgRules, this.range)), tag));
    if (fw) {
      const res = dnatResourceOf(fw);
      writes.push(this.enqueueDoc(res, (doc) => unexpired(() => addDnatRules(res, doc, fw, grant.requestId, grant.ports, grant.sourcePrefix, path.primaryIp, description, outside)), tag));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // All or nothing: a grant open on one resource of the path but not another is closed again.
      await this.closeIn(grant.requestId, this.resourcesOf(path, grant.target)).catch((err: unknown) => this.log('azure: could not roll back a partial grant; the reconciler will', { request: grant.requestId, err }));
      throw failed.reason;
    }
    return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  /**
   * Removes the request's rules from the resources they were written to (`written`, the request's
   * stored rules), whatever became of the VM since: deleted, its NIC detached, its NSG swapped, the
   * target dropped from the policy. Without stored rules (a grant whose activation failed before
   * it was recorded), the target's current path is read.
   */
  async close(requestId: string, target: Target, written: AppliedRule[] = [], when?: CloseTiming): Promise<AppliedRule[]> {
    const scopes = new Map<string, string>();
    for (const r of written) scopes.set(r.scope.toLowerCase(), r.scope);
    if (scopes.size === 0) for (const r of this.resourcesOf(await this.discover(target), target)) scopes.set(r.toLowerCase(), r);
    return this.closeIn(requestId, [...scopes.values()], when);
  }

  private async closeIn(requestId: string, resources: string[], when?: CloseTiming): Promise<AppliedRule[]> {
    const mine = ownedBy(requestId);
    const removed = await Promise.all(
      resources.map((res) => {
        // Closes are taken earliest expiry first (as the rules last seen there say; else now).
        const notBefore = this.times.holdUntil(res, when);
        const tag = { urgent: true, requests: [requestId], deadline: when?.by ?? this.times.expiryOf(res, requestId) ?? this.now(), ...(notBefore !== undefined ? { notBefore } : {}) };
        return kindOf(res) === 'nsg'
          ? this.enqueueNsg(res, (doc) => removeNsgRules(res, doc, (r) => mine({ name: r.name, description: r.properties.description })), tag)
          : this.enqueueDoc(res, (doc) => removeDnatRules(res, doc, mine), tag);
      }),
    );
    return removed.flat();
  }

  closeLeadMs(rules: AppliedRule[], expiresAt: number): number {
    return this.times.closeLeadMs(rules, expiresAt);
  }

  /** Every rule the bot owns that it can read (scope-sweep.ts). */
  async list(): Promise<AppliedRule[]> {
    return this.sweep.list();
  }

  private subscriptions(): Set<string> {
    const subs = new Set<string>((this.opts.subscriptions ?? []).map((s) => s.toLowerCase()));
    for (const t of this.opts.targets()) {
      subs.add(parseArmId(t.id).subscription.toLowerCase());
      if (t.firewall) subs.add(dnatResourceOf(t.firewall).split('/')[2]!.toLowerCase());
    }
    return subs;
  }

  async remove(rules: AppliedRule[]): Promise<AppliedRule[]> {
    const byScope = new Map<string, { scope: string; names: Set<string>; requests: Set<string>; deadline: number }>();
    for (const r of rules) {
      const e = byScope.get(r.scope.toLowerCase()) ?? { scope: r.scope, names: new Set<string>(), requests: new Set<string>(), deadline: r.expiresAt };
      e.names.add(r.name);
      e.requests.add(r.requestId);
      e.deadline = Math.min(e.deadline, r.expiresAt);
      byScope.set(r.scope.toLowerCase(), e);
    }
    const removed = await Promise.allSettled(
      [...byScope.values()].map(({ scope: res, names, requests, deadline }) => {
        const tag = { urgent: true, requests: [...requests], deadline };
        return kindOf(res) === 'nsg'
          ? this.enqueueNsg(res, (doc) => removeNsgRules(res, doc, (r) => names.has(r.name) && parseRuleDescription(r.properties.description) !== null), tag)
          : this.enqueueDoc(res, (doc) => removeDnatRules(res, doc, (r) => names.has(r.name ?? '') && parseRuleDescription(r.description) !== null), tag);
      }),
    );
    // Each resource settles on its own: what could be removed is reported; the rest waits for the next sweep.
    const failed = removed.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const f of failed) this.log('azure: reconciler could not remove rules; the next sweep retries', { err: f.reason instanceof Error ? f.reason.message : String(f.reason) });
    if (failed.length === removed.length && failed.length > 0) throw failed[0]!.reason;
    return removed.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  async updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<void> {
    const description = ruleDescription(requestId, expiresAt);
    const mine = ownedBy(requestId);
    const tag = { requests: [requestId] };
    await Promise.all(
      this.resourcesOf(await this.discover(target), target).map((res) =>
        kindOf(res) === 'nsg'
          ? this.enqueueNsg(res, (doc) => {
              const puts = nsgRulesOf(doc)
                .filter((r) => mine({ name: r.name, description: r.properties.description }) && r.properties.description !== description)
                .map((r) => ({ name: r.name, properties: { ...r.properties, description } }));
              return { results: [], puts, deletes: [] };
            }, tag)
          : this.enqueueDoc(res, (doc) => {
              let changed = false;
              for (const r of natRuleList(res, doc)) {
                if (mine(r) && r.description !== description) {
                  r.description = description;
                  changed = true;
                }
              }
              return { results: [], changed };
            }, tag),
      ),
    );
  }

  /**
   * Deletes Allow rules that another writer made on the target's NSG path and `match` selects:
   * the Defender gate's documented fallback, removing Defender for Cloud's own JIT rule when
   * Defender will not end a request early. The bot's own rules are never touched here. Returns
   * what was deleted.
   */
  async removeForeign(target: NetworkTarget, match: (rule: WireRule, privateIps: string[]) => boolean): Promise<AppliedRule[]> {
    const path = await this.discover(target, true);
    const removed = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueueNsg(nsg, (doc) => {
          const deletes = nsgRulesOf(doc).filter((r) => r.properties.access === 'Allow' && !parseRuleDescription(r.properties.description) && match(r, path.privateIps));
          return { results: deletes.map((r) => foreignApplied(nsg, r)), puts: [], deletes };
        }),
      ),
    );
    return removed.flat();
  }

  /** Every VM of the subscriptions, supported or not (see inventory.ts). */
  async inventory(): Promise<InventoryRow[]> {
    return this.inv.list();
  }

  async enforce(target: Target, ports: PortSpec[]): Promise<AppliedRule[]> {
    const path = await this.discover(target, true);
    const [lo, hi] = this.opts.denyPriorityRange ?? [4000, 4096];
    const written = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueueNsg(nsg, (doc) => planDenyRules(nsg, doc, target.name, ports, path.privateIps, [lo, hi])),
      ),
    );
    return written.flat();
  }

  async exposures(target: Target, ports: PortSpec[]): Promise<string[]> {
    const path = await this.discover(target, true);
    const docs = await Promise.all(path.nsgs.map(async (nsg) => ({ nsg, doc: (await this.arm.get(nsg, NETWORK_API)).doc })));
    return winningAllows(docs, ports, path.privateIps);
  }

  async unenforce(target: Target): Promise<AppliedRule[]> {
    const path = await this.discover(target, true);
    const removed = await Promise.all(
      path.nsgs.map((nsg) =>
        this.enqueueNsg(nsg, (doc) => planUndeny(nsg, doc, target.name)),
      ),
    );
    return removed.flat();
  }

  private resourcesOf(path: NetworkPath, target: NetworkTarget): string[] {
    return [...path.nsgs, ...(target.firewall ? [dnatResourceOf(target.firewall)] : [])];
  }

  private enqueueNsg(resourceId: string, plan: (doc: ArmDoc) => NsgPlan, tag?: ChangeTag): Promise<AppliedRule[]> {
    return this.writer.enqueue(resourceId, plan, tag);
  }

  private enqueueDoc(resourceId: string, plan: (doc: ArmDoc) => DocPlan, tag?: ChangeTag): Promise<AppliedRule[]> {
    return this.writer.enqueue(resourceId, plan, tag);
  }
}

