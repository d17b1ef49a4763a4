// A small Azure Resource Manager emulator on 127.0.0.1 over HTTPS (the ARM SDK refuses plain
// http): resource groups, VMs, NICs, virtual networks and subnets, network security groups and
// their child security rules, Azure Firewalls and Firewall Policy rule collection groups, answered
// as ARM documents them, and as strict as ARM where the bot could get it wrong:
// - RBAC: every call needs its action in the bot's role (manifest/azure/jit-bot-role.json) at an
//   assigned scope (403 AuthorizationFailed); resource groups are listed as far as the role reaches.
//   Linked access: a write whose body references an application security group needs
//   `applicationSecurityGroups/joinNetworkSecurityRule/action`, an IP group `ipGroups/join/action`,
//   a firewall's subnet / public IP their join actions (403 LinkedAuthorizationFailed).
// - Azure Policy: deny assignments on security rules (denyByPolicy) are evaluated on every write's
//   body, whole-NSG PUTs included (403 RequestDisallowedByPolicy).
// - Writes: api-version required, ETag / If-Match / If-None-Match (412), one operation at a time
//   per NSG and per firewall policy (409 AnotherOperationInProgress), locks (409 ScopeLocked),
//   unique priority per direction (400 SecurityRuleConflict), one address family per rule, the
//   NSG's rule and prefix limits. A PUT answers at once with the goal state,
//   `provisioningState: Updating` and Azure-AsyncOperation; the operation ends Succeeded, or
//   Failed / Canceled when injected; firewall updates take `firewallLatencyMs` (minutes in Azure).
// - Reads: 429 with Retry-After and injected faults on GETs too; lists are paged (nextLink).
// - Azure Resource Graph (POST /providers/Microsoft.ResourceGraph/resources) from the same state:
//   the `Resources` and `ComputeResources` tables, a strict KQL subset (./resource-graph.ts), rows
//   filtered by the caller's read access (Resource Graph needs no action of its own), `$top` /
//   `$skipToken` paging (only for results that project `id`), the per-user quota with its
//   `x-ms-user-quota-*` headers and 429 RateLimiting, api-version and request validation.
// - The world changes under the bot: VMs deleted, NICs detached, NSGs re-associated.
// The real adapter reaches it by configuration only (AZURE_ARM_ENDPOINT, AZURE_ARM_CA_FILE,
// AZURE_ACCESS_TOKEN).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphQueryError, parseGraphQuery, runGraphQuery, type GraphRow } from './resource-graph.js';

export interface ArmRule {
  name: string;
  properties: {
    priority: number;
    direction: 'Inbound' | 'Outbound';
    access: 'Allow' | 'Deny';
    protocol: string;
    sourceAddressPrefix?: string;
    sourceAddressPrefixes?: string[];
    sourcePortRange?: string;
    destinationAddressPrefix?: string;
    destinationAddressPrefixes?: string[];
    destinationPortRange?: string;
    sourceApplicationSecurityGroups?: Array<{ id: string }>;
    destinationApplicationSecurityGroups?: Array<{ id: string }>;
    description?: string;
    provisioningState?: string;
  };
  etag?: string;
}

interface Nsg {
  id: string;
  name: string;
  location: string;
  etag: string;
  rules: ArmRule[];
  busyUntil: number;
}

/**
 * An injected answer to the next write: an error status, or a network fault —
 * `hang: 'before'` never answers and applies nothing (a dead connection), `hang: 'after'` applies
 * the write but never answers (the answer is lost), `slowMs` applies it and answers late — or a
 * long-running operation that ends `Failed` / `Canceled` with `code`.
 */
export type Fault =
  | { status: number; code: string; headers?: Record<string, string> }
  | { hang: 'before' | 'after' }
  | { slowMs: number }
  | { lro: 'Failed' | 'Canceled'; code: string };

export interface ArmStats {
  puts: number;
  deletes: number;
  gets: number;
  conflicts409: number;
  preconditionFailed412: number;
  throttled429: number;
  ruleConflicts400: number;
  /** Whole-NSG PUTs accepted (also counted in `puts`), and refused with 403 RequestDisallowedByPolicy. */
  nsgPuts: number;
  policyDenied403: number;
  forbidden403: number;
  faults: number;
  /** Resource Graph requests answered (pages, refusals and 429s included). */
  graphQueries: number;
  /** Resource Graph requests refused with 429 RateLimiting (quota spent or injected). */
  graphThrottled429: number;
}

export interface ArmEmulatorOptions {
  /** How long a write keeps its NSG busy (its operation in progress). */
  latencyMs?: number;
  /** The same for Azure Firewall and Firewall Policy writes (minutes in Azure; scaled down in tests). */
  firewallLatencyMs?: number;
  /** The bot's role actions (default: manifest/azure/jit-bot-role.json's). */
  roleActions?: string[];
  /** Where the role is assigned (ARM scopes); default everywhere. */
  assignedScopes?: string[];
  /** Items per page of a list (default 50). */
  pageSize?: number;
  /** How long a read (GET of a resource or a list, or a Resource Graph query) takes to answer. */
  readLatencyMs?: number;
  /** Most rows per Resource Graph page, whatever `$top` asks (the service's is 1,000). */
  graphPageSize?: number;
  /** Resource Graph's per-user quota: queries per window (the service documents 15 per 5 s). */
  graphQuota?: { queries: number; windowMs: number };
  /** The Resource Graph tables this cloud has (default Resources and ComputeResources). */
  graphTables?: string[];
  /** false: no Resource Graph at this endpoint (ARM answers 400 NoRegisteredProviderFound). */
  resourceGraph?: boolean;
}

/** api-versions Resource Graph's `resources` operation accepts. */
export const RESOURCE_GRAPH_API_VERSIONS = ['2018-09-01-preview', '2019-04-01', '2020-04-01-preview', '2020-09-01-preview', '2021-03-01', '2021-06-01-preview', '2022-10-01', '2024-04-01'];

const lower = (s: string) => s.toLowerCase();
const GRAPH_PATH = /^\/providers\/microsoft\.resourcegraph\/resources$/i;
const ROLE_FILE = new URL('../../manifest/azure/jit-bot-role.json', import.meta.url);

/** What actionOf answers for a call no role action governs (Resource Graph queries). */
export const NO_ACTION = '';

/** The Azure RBAC action an ARM request needs: provider namespace, resource types, and read / write / delete. */
export function actionOf(method: string, path: string): string {
  // Resource Graph needs no action of its own: it answers with what the caller may read.
  if (/^\/providers\/microsoft\.resourcegraph\/resources$/i.test(path)) return NO_ACTION;
  const verb = method === 'GET' ? 'read' : method === 'PUT' || method === 'PATCH' ? 'write' : method === 'DELETE' ? 'delete' : 'action';
  if (!/\/providers\//i.test(path)) {
    // /subscriptions/<s>[/resourcegroups[/<rg>]]
    return /\/resourcegroups/i.test(path) ? `microsoft.resources/subscriptions/resourcegroups/${verb}` : `microsoft.resources/subscriptions/${verb}`;
  }
  const afterProviders = path.split(/\/providers\//i).pop()!.split('/');
  const [namespace, ...rest] = afterProviders;
  const types = rest.filter((_, i) => i % 2 === 0);
  return `${namespace}/${types.join('/')}/${verb}`.toLowerCase();
}

/** A self-signed certificate for 127.0.0.1 (openssl), written to a temp dir. */
export function selfSignedCert(): { key: string; cert: string; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'arm-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

export type Send = (status: number, payload: unknown, headers?: Record<string, string>) => void;

/**
 * Another resource provider answered by the same emulator (test/fakes/defender.ts: the Security
 * API). The emulator authenticates, checks the api-version and the role (with `actionOf` when the
 * plugin names the action itself), applies read faults and throttling; then each plugin may answer.
 */
export interface ArmPlugin {
  /** The RBAC action a call needs, when the generic path rule gets it wrong; undefined: not the plugin's. */
  actionOf?(method: string, path: string): string | undefined;
  /** Answers the call and returns true, or returns false (not the plugin's). */
  handle(call: { method: string; path: string; key: string; query: URLSearchParams; headers: Record<string, string | string[] | undefined>; body: Record<string, unknown> }, send: Send): boolean;
}
type Doc = { id: string; name: string; location: string; etag: string; properties: Record<string, unknown>; busyUntil: number; provisioningState: string };
interface Operation {
  doneAt: number;
  outcome: 'Succeeded' | 'Failed' | 'Canceled';
  code?: string;
  finalize: (outcome: 'Succeeded' | 'Failed' | 'Canceled') => void;
  finalized: boolean;
}

export class ArmEmulator {
  readonly stats: ArmStats = { puts: 0, deletes: 0, gets: 0, conflicts409: 0, preconditionFailed412: 0, throttled429: 0, ruleConflicts400: 0, nsgPuts: 0, policyDenied403: 0, forbidden403: 0, faults: 0, graphQueries: 0, graphThrottled429: 0 };
  /** Every Resource Graph request body as received (api-version added), for checks on scope and paging. */
  readonly graphRequests: Array<{ apiVersion: string | null; body: Record<string, unknown> }> = [];
  private graphThrottle = 0;
  private graphRetryAfterS = 1;
  /** Per caller (token): queries counted in the current quota window. */
  private graphWindows = new Map<string, { start: number; used: number }>();
  /** Time spent evaluating Resource Graph queries over the emulator's state (the emulator's own cost, for benchmarks). */
  graphEvalMs = 0;
  /** Results being paged through, by snapshot id (in the $skipToken). */
  private graphSnapshots = new Map<string, { rows: GraphRow[]; columns: string[] }>();
  /** Every write (time, resource, number of rules after it). */
  readonly writes: Array<{ at: number; nsg: string; rules: number }> = [];
  /** Every request (method and path), to check the bot's Azure role covers what it calls. */
  readonly calls: Array<{ method: string; path: string; token: string }> = [];
  private server: Server;
  private vms = new Map<string, { id: string; name: string; location: string; nics: string[]; primary?: number; scaleSet?: string }>();
  private nics = new Map<string, { id: string; name: string; ips: Array<{ ip: string; subnet: string }>; nsg?: string; vm?: string }>();
  private subnets = new Map<string, { id: string; name: string; prefix: string; nsg?: string }>();
  private nsgs = new Map<string, Nsg>();
  /** Azure Firewalls and Firewall Policy rule collection groups, kept as ARM's wire JSON. */
  private docs = new Map<string, Doc>();
  /** Firewall policies: one operation at a time across their rule collection groups. */
  private policies = new Map<string, { id: string; busyUntil: number; firewalls: string[]; basePolicy?: string }>();
  private locks = new Set<string>();
  private ops = new Map<string, Operation>();
  private running = new Set<Operation>();
  private faults: Fault[] = [];
  private readFaults: Fault[] = [];
  /** How the write being committed is answered (set by admit() from a network fault). */
  private answer: Fault | undefined;
  private throttle = 0;
  private readThrottle = 0;
  private retryAfterS = 1;
  private readRetryAfterS = 1;
  private role: Set<string>;
  private plugins: ArmPlugin[] = [];
  readonly certFile: string;
  url = '';
  private readsInFlight = 0;
  /** The most reads the client had in flight at once (with `readLatencyMs`). */
  maxReadsInFlight = 0;

  constructor(private readonly opts: ArmEmulatorOptions = {}) {
    this.resourceGraphEnabled = opts.resourceGraph ?? true;
    const tls = selfSignedCert();
    this.certFile = tls.certFile;
    this.role = new Set((opts.roleActions ?? (JSON.parse(readFileSync(ROLE_FILE, 'utf8')) as { Actions: string[] }).Actions).map(lower));
    this.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        } catch {
          /* handled as an empty body */
        }
        const send: Send = (status, payload, headers = {}) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
          res.end(payload === undefined ? '' : JSON.stringify(payload));
        };
        const [path, query = ''] = (req.url ?? '/').split('?') as [string, string?];
        const run = () => {
          try {
            this.calls.push({ method: req.method ?? 'GET', path, token: String(req.headers.authorization ?? '').replace(/^Bearer /, '') });
            this.handle(req.method ?? 'GET', path, new URLSearchParams(query), req.headers, body, send);
          } catch (err) {
            send(500, { error: { code: 'InternalServerError', message: String(err) } });
          }
        };
        // Reads that take a while (opts.readLatencyMs): how many the client keeps in flight is measured.
        if ((req.method === 'GET' || GRAPH_PATH.test(path)) && this.opts.readLatencyMs && !/\/operations\//i.test(path)) {
          this.readsInFlight++;
          this.maxReadsInFlight = Math.max(this.maxReadsInFlight, this.readsInFlight);
          setTimeout(() => {
            this.readsInFlight--;
            run();
          }, this.opts.readLatencyMs);
        } else run();
      });
    });
  }

  /** Answers another resource provider's calls too (see ArmPlugin). */
  use(plugin: ArmPlugin): this {
    this.plugins.push(plugin);
    return this;
  }

  /** A VM's network path as a resource provider acting on it sees it: its NSGs (NIC's, then subnets') and private IPs. */
  vmPath(vmId: string): { name: string; nsgs: string[]; ips: string[] } | undefined {
    const vm = this.vms.get(lower(vmId));
    if (!vm) return undefined;
    const nsgs: string[] = [];
    const ips: string[] = [];
    for (const nicId of vm.nics) {
      const nic = this.nics.get(lower(nicId));
      if (!nic) continue;
      if (nic.nsg) nsgs.push(nic.nsg);
      for (const c of nic.ips) {
        ips.push(c.ip);
        const sn = this.subnets.get(lower(c.subnet))?.nsg;
        if (sn) nsgs.push(sn);
      }
    }
    return { name: vm.name, nsgs: [...new Set(nsgs)], ips };
  }

  /** Deletes a rule behind the bot's back (another writer removing its own rule). */
  removeRule(nsgId: string, name: string): boolean {
    const nsg = this.nsgs.get(lower(nsgId));
    const i = nsg ? nsg.rules.findIndex((r) => lower(r.name) === lower(name)) : -1;
    if (!nsg || i < 0) return false;
    nsg.rules.splice(i, 1);
    nsg.etag = `W/"${randomUUID()}"`;
    return true;
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  // ------------------------------------------------------------------ world building

  addNsg(id: string, location = 'westeurope', rules: ArmRule[] = []): string {
    this.nsgs.set(lower(id), { id, name: id.split('/').pop()!, location, etag: `W/"${randomUUID()}"`, rules, busyUntil: 0 });
    return id;
  }

  addSubnet(id: string, prefix: string, nsg?: string): string {
    this.subnets.set(lower(id), { id, name: id.split('/').pop()!, prefix, ...(nsg ? { nsg } : {}) });
    return id;
  }

  addNic(id: string, ips: Array<{ ip: string; subnet: string }>, nsg?: string): string {
    this.nics.set(lower(id), { id, name: id.split('/').pop()!, ips, ...(nsg ? { nsg } : {}) });
    return id;
  }

  /** A VM with these NICs; `primary` is the index of its primary NIC (default the first). */
  addVm(id: string, nics: string[], location = 'westeurope', primary = 0): string {
    this.vms.set(lower(id), { id, name: id.split('/').pop()!, location, nics, primary });
    return id;
  }

  /**
   * A Uniform scale set with one instance per address, each with a NIC (under the scale set) in
   * `subnet` with `nsg` (from the scale set's model). Returns the instance ids.
   */
  addScaleSet(id: string, ips: string[], subnet: string, nsg?: string): string[] {
    const name = id.split('/').pop()!;
    this.scaleSets.set(lower(id), { id, name, instances: ips.map((_, i) => String(i)) });
    return ips.map((ip, i) => {
      const vm = `${id}/virtualMachines/${i}`;
      const nic = this.addNic(`${vm}/networkInterfaces/${name}-nic`, [{ ip, subnet }], nsg);
      this.nics.get(lower(nic))!.vm = vm;
      this.vms.set(lower(vm), { id: vm, name: `${name}_${i}`, location: 'westeurope', nics: [nic], scaleSet: id });
      return vm;
    });
  }
  private scaleSets = new Map<string, { id: string; name: string; instances: string[] }>();

  /** Deletes a VM (its NIC stays, as in Azure unless deleted with it). */
  deleteVm(id: string): void {
    this.vms.delete(lower(id));
  }

  /** Associates another NSG with a NIC, or none (detached). */
  setNicNsg(nicId: string, nsg: string | undefined): void {
    const nic = this.nics.get(lower(nicId))!;
    if (nsg) nic.nsg = nsg;
    else delete nic.nsg;
  }

  /** Associates another NSG with a subnet, or none. */
  setSubnetNsg(subnetId: string, nsg: string | undefined): void {
    const s = this.subnets.get(lower(subnetId))!;
    if (nsg) s.nsg = nsg;
    else delete s.nsg;
  }

  /** A management lock (ReadOnly) on a scope: every write below it answers 409 ScopeLocked. */
  lockScope(scope: string): void {
    this.locks.add(lower(scope));
  }

  unlockScope(scope: string): void {
    this.locks.delete(lower(scope));
  }

  /** Every VM of the test policy (test/fixtures/book.ts) with the usual path; returns vm1's ids. */
  testBookVms(): ReturnType<ArmEmulator['standardVm']> {
    const vm1 = this.standardVm('sub1', 'prod', 'vm1', '10.0.0.4');
    for (const [rg, name, ip] of [['prod', 'db1', '10.0.0.5'], ['dev', 'dev1', '10.1.0.4'], ['prod', 'quorum2', '10.0.0.6'], ['prod', 'quick1', '10.0.0.7']] as const) this.standardVm('sub1', rg, name, ip);
    return vm1;
  }

  /**
   * A VM with a NIC NSG and a subnet NSG (Azure JIT's usual path), in resource group `rg` of `sub`.
   * Returns the ids.
   */
  standardVm(sub: string, rg: string, name: string, ip: string | string[]) {
    const base = `/subscriptions/${sub}/resourceGroups/${rg}/providers`;
    const subnetNsg = this.nsgs.has(lower(`${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`))
      ? `${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`
      : this.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`);
    const subnet = this.subnets.has(lower(`${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`))
      ? `${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`
      : this.addSubnet(`${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`, '10.0.0.0/24', subnetNsg);
    const nicNsg = this.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/${name}-nsg`);
    const nic = this.addNic(`${base}/Microsoft.Network/networkInterfaces/${name}-nic`, (Array.isArray(ip) ? ip : [ip]).map((a) => ({ ip: a, subnet })), nicNsg);
    const vm = this.addVm(`${base}/Microsoft.Compute/virtualMachines/${name}`, [nic]);
    return { vm, nic, nicNsg, subnet, subnetNsg };
  }

  /** An Azure Firewall (classic rules) with one public IP, or several (one IP configuration each). */
  addFirewall(id: string, publicIp: string | string[]): string {
    const rg = id.split('/providers/')[0]!;
    const ips = Array.isArray(publicIp) ? publicIp : [publicIp];
    const pips = ips.map((ip, i) => {
      const pip = `${rg}/providers/Microsoft.Network/publicIPAddresses/${id.split('/').pop()}-pip${i === 0 ? '' : i + 1}`;
      this.publicIps.set(lower(pip), { id: pip, ip });
      return pip;
    });
    this.docs.set(lower(id), {
      id, name: id.split('/').pop()!, location: 'westeurope', etag: `W/"${randomUUID()}"`, busyUntil: 0, provisioningState: 'Succeeded',
      properties: {
        sku: { name: 'AZFW_VNet', tier: 'Standard' },
        threatIntelMode: 'Alert',
        // Only the first IP configuration names the subnet, as in Azure.
        ipConfigurations: pips.map((pip, i) => ({ name: `ipconfig${i + 1}`, properties: { ...(i === 0 ? { privateIPAddress: '10.100.0.4', subnet: { id: `${rg}/providers/Microsoft.Network/virtualNetworks/hub-vnet/subnets/AzureFirewallSubnet` } } : {}), publicIPAddress: { id: pip } } })),
        natRuleCollections: [],
        networkRuleCollections: [],
        applicationRuleCollections: [],
      },
    });
    return id;
  }
  private publicIps = new Map<string, { id: string; ip: string }>();

  /** Someone else's DNAT rule collection on a classic firewall. */
  addFirewallNatRules(firewallId: string, collection: Record<string, unknown>): void {
    const d = this.docs.get(lower(firewallId))!;
    (d.properties.natRuleCollections as unknown[]).push(collection);
    d.etag = `W/"${randomUUID()}"`;
  }

  /** Someone else's network rule collection on a classic firewall (e.g. one referencing an IP group). */
  addFirewallNetworkRules(firewallId: string, collection: Record<string, unknown>): void {
    const d = this.docs.get(lower(firewallId))!;
    (d.properties.networkRuleCollections as unknown[]).push(collection);
    d.etag = `W/"${randomUUID()}"`;
  }

  /**
   * A Firewall Policy attached to these firewalls, inheriting from `basePolicy` if given (its rules
   * apply too); its rule collection groups are created by PUT or addRuleCollectionGroup.
   */
  addFirewallPolicy(id: string, firewalls: string[] = [], basePolicy?: string): string {
    this.policies.set(lower(id), { id, busyUntil: 0, firewalls, ...(basePolicy ? { basePolicy } : {}) });
    return id;
  }

  /** Someone else's rule collection group in a policy (e.g. their DNAT rule collections). */
  addRuleCollectionGroup(policyId: string, name: string, ruleCollections: Array<Record<string, unknown>>, priority = 300): string {
    const id = `${policyId}/ruleCollectionGroups/${name}`;
    this.docs.set(lower(id), { id, name, location: 'westeurope', etag: `W/"${randomUUID()}"`, busyUntil: 0, provisioningState: 'Succeeded', properties: { priority, ruleCollections } });
    return id;
  }

  private policyJson(p: { id: string; firewalls: string[]; basePolicy?: string }) {
    const children = [...this.policies.values()].filter((c) => c.basePolicy && lower(c.basePolicy) === lower(p.id));
    const groups = [...this.docs.values()].filter((d) => lower(d.id).startsWith(`${lower(p.id)}/rulecollectiongroups/`));
    return {
      id: p.id, name: p.id.split('/').pop(), type: 'Microsoft.Network/firewallPolicies', location: 'westeurope',
      properties: {
        provisioningState: 'Succeeded',
        firewalls: p.firewalls.map((id) => ({ id })),
        ...(p.basePolicy ? { basePolicy: { id: p.basePolicy } } : {}),
        childPolicies: children.map((c) => ({ id: c.id })),
        ruleCollectionGroups: groups.map((g) => ({ id: g.id })),
      },
    };
  }

  /**
   * Azure Firewall's DNAT limit as documented: public IP addresses + unique destinations (destination
   * address, port and protocol) ≤ 250, per firewall, counting every rule collection group of its
   * policy and of the policies it inherits from. Returns the count that breaks the limit, or null.
   */
  private dnatOverLimit(path: string, props: Record<string, unknown>): { firewall: string; count: number } | null {
    const LIMIT = 250;
    const key = lower(path);
    const rcg = /^(.*\/providers\/microsoft\.network\/firewallpolicies\/[^/]+)\/rulecollectiongroups\/[^/]+$/.exec(key);
    if (!rcg) {
      const count = dnatDestinations(this.natRulesOf(path, props)).size + publicIpCount(props);
      return count > LIMIT ? { firewall: path.split('/').pop()!, count } : null;
    }
    // Every policy whose rules include this group's: the policy and those inheriting from it.
    const affected = [rcg[1]!];
    for (let i = 0; i < affected.length; i++) for (const c of this.policies.values()) if (c.basePolicy && lower(c.basePolicy) === affected[i] && !affected.includes(lower(c.id))) affected.push(lower(c.id));
    for (const pol of affected) {
      const dests = new Set<string>();
      const seen = new Set<string>();
      for (let p = this.policies.get(pol); p && !seen.has(lower(p.id)); p = p.basePolicy ? this.policies.get(lower(p.basePolicy)) : undefined) {
        seen.add(lower(p.id));
        for (const d of this.docs.values()) {
          if (!lower(d.id).startsWith(`${lower(p.id)}/rulecollectiongroups/`) || lower(d.id) === key) continue;
          for (const x of dnatDestinations(this.natRulesOf(d.id, d.properties))) dests.add(x);
        }
        if (lower(p.id) === rcg[1]) for (const x of dnatDestinations(this.natRulesOf(path, props))) dests.add(x);
      }
      for (const fwId of this.policies.get(pol)?.firewalls ?? []) {
        const fw = this.docs.get(lower(fwId));
        const count = dests.size + (fw ? publicIpCount(fw.properties) : 1);
        if (count > LIMIT) return { firewall: fwId.split('/').pop()!, count };
      }
    }
    return null;
  }

  /** DNAT rules on a firewall (classic) or in a rule collection group, flattened. */
  natRules(resourceId: string): Array<Record<string, unknown>> {
    const d = this.docs.get(lower(resourceId));
    return d ? this.natRulesOf(resourceId, d.properties) : [];
  }

  /** The provisioningState ARM shows for a firewall or rule collection group. */
  provisioningState(resourceId: string): string | undefined {
    this.settle();
    return this.docs.get(lower(resourceId))?.provisioningState;
  }

  private natRulesOf(resourceId: string, props: Record<string, unknown>): Array<Record<string, unknown>> {
    if (/\/rulecollectiongroups\//.test(lower(resourceId))) {
      return ((props.ruleCollections ?? []) as Array<{ ruleCollectionType: string; rules?: Array<Record<string, unknown>> }>).filter((c) => c.ruleCollectionType === 'FirewallPolicyNatRuleCollection').flatMap((c) => c.rules ?? []);
    }
    return ((props.natRuleCollections ?? []) as Array<{ properties?: { rules?: Array<Record<string, unknown>> } }>).flatMap((c) => c.properties?.rules ?? []);
  }

  rules(nsgId: string): ArmRule[] {
    return this.nsgs.get(lower(nsgId))?.rules ?? [];
  }

  /** Changes a rule behind the bot's back (another admin, a policy). */
  addForeignRule(nsgId: string, rule: ArmRule): void {
    const nsg = this.nsgs.get(lower(nsgId))!;
    nsg.rules.push({ ...rule, properties: { ...rule.properties, provisioningState: 'Succeeded' } });
    nsg.etag = `W/"${randomUUID()}"`;
  }

  /**
   * An Azure Policy assignment with a deny effect on security rules (e.g. "no SSH from the
   * Internet"), assigned after rules it matches were made: ARM evaluates it on every write's body,
   * so a whole-NSG PUT that re-sends a matching rule is refused (403 RequestDisallowedByPolicy), a
   * child-rule PUT only when the rule it writes matches. Returns the assignment's id.
   */
  denyByPolicy(name: string, matches: (rule: ArmRule) => boolean): string {
    const id = `/subscriptions/sub1/providers/Microsoft.Authorization/policyAssignments/${name}`;
    this.policyDenies.push({ id, name, matches });
    return id;
  }
  private policyDenies: Array<{ id: string; name: string; matches: (rule: ArmRule) => boolean }> = [];

  /** ARM's Azure Policy check of a write's rules: false (answered 403) when a deny assignment matches one. */
  private policyAllows(resourceId: string, rules: ArmRule[], send: Send): boolean {
    for (const a of this.policyDenies) {
      if (!rules.some((r) => a.matches(r))) continue;
      this.stats.policyDenied403++;
      const def = `/providers/Microsoft.Authorization/policyDefinitions/${a.name}`;
      send(403, {
        error: {
          code: 'RequestDisallowedByPolicy',
          target: resourceId.split('/').pop(),
          message: `Resource '${resourceId.split('/').pop()}' was disallowed by policy. Policy identifiers: '[{"policyAssignment":{"name":"${a.name}","id":"${a.id}"},"policyDefinition":{"name":"${a.name}","id":"${def}"}}]'.`,
          additionalInfo: [{ type: 'PolicyViolation', info: { evaluationDetails: { evaluatedExpressions: [] }, policyDefinitionId: def, policyDefinitionName: a.name, policyDefinitionEffect: 'deny', policyAssignmentId: a.id, policyAssignmentName: a.name, policyAssignmentScope: '/subscriptions/sub1' } }],
        },
      });
      return false;
    }
    return true;
  }

  /** The next writes (PUT / DELETE) fail with these answers, in order. */
  failNext(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** The next reads (GET of a resource or a list; not operation polls) fail with these answers, in order. */
  failNextRead(...faults: Array<Extract<Fault, { status: number }> | { hang: 'before' }>): void {
    this.readFaults.push(...faults);
  }

  /** Drops faults not yet consumed. */
  clearFaults(): void {
    this.faults.length = 0;
    this.readFaults.length = 0;
  }

  /** The next `n` writes are throttled with 429 and Retry-After. */
  throttleNext(n: number, retryAfterS = 1): void {
    this.throttle = n;
    this.retryAfterS = retryAfterS;
  }

  /** Reads below `scope` are refused (403 AuthorizationFailed), as when the role is missing there. */
  denyReads(scope: string): void {
    this.deniedReads.add(lower(scope));
  }

  allowReads(scope: string): void {
    this.deniedReads.delete(lower(scope));
  }
  private deniedReads = new Set<string>();

  /** The next `n` reads are throttled with 429 and Retry-After (ARM's per-principal read limit). */
  throttleReads(n: number, retryAfterS = 1): void {
    this.readThrottle = n;
    this.readRetryAfterS = retryAfterS;
  }


  /** false: this endpoint has no Resource Graph (a cloud or proxy without it); ARM answers 400 NoRegisteredProviderFound. */
  resourceGraphEnabled: boolean;

  /** Resource Graph has not indexed these resources yet (it lags ARM by seconds): its tables leave them out. */
  hideFromGraph(...ids: string[]): void {
    for (const id of ids) this.graphHidden.add(lower(id));
  }
  private graphHidden = new Set<string>();

  /** The next `n` Resource Graph queries are refused with 429 RateLimiting and Retry-After, whatever the quota. */
  throttleGraph(n: number, retryAfterS = 1): void {
    this.graphThrottle = n;
    this.graphRetryAfterS = retryAfterS;
  }

  // ------------------------------------------------------------------ Azure Resource Graph

  /** Rows of a Resource Graph table, from the emulator's state (types lower-case, as the service shows them). */
  private graphRows(table: string): GraphRow[] {
    const base = (id: string, type: string, extra: Record<string, unknown>) => {
      const m = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\//i.exec(id);
      return { id, name: id.split('/').pop()!, type, tenantId: 'tenant1', kind: '', location: 'westeurope', resourceGroup: lower(m?.[2] ?? ''), subscriptionId: m?.[1] ?? '', managedBy: '', sku: null, plan: null, tags: null, identity: null, zones: null, extendedLocation: null, ...extra };
    };
    const isSsNic = (id: string) => /\/virtualmachinescalesets\//i.test(id);
    if (table === 'computeresources') {
      return [
        ...[...this.vms.values()].filter((v) => v.scaleSet).map((v) => base(v.id, 'microsoft.compute/virtualmachinescalesets/virtualmachines', { name: v.name, properties: this.vmJson(v).properties })),
        ...[...this.nics.values()].filter((n) => isSsNic(n.id)).map((n) => base(n.id, 'microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces', { properties: this.nicJson(n).properties })),
      ];
    }
    const vnets = new Map<string, Array<{ id: string; name: string; prefix: string; nsg?: string }>>();
    for (const sn of this.subnets.values()) {
      const vnet = sn.id.split('/subnets/')[0]!;
      vnets.set(vnet, [...(vnets.get(vnet) ?? []), sn]);
    }
    return [
      ...[...this.vms.values()].filter((v) => !v.scaleSet).map((v) => base(v.id, 'microsoft.compute/virtualmachines', { properties: this.vmJson(v).properties })),
      ...[...this.nics.values()].filter((n) => !isSsNic(n.id)).map((n) => base(n.id, 'microsoft.network/networkinterfaces', { properties: this.nicJson(n).properties })),
      ...(() => {
        const assoc = this.nsgAssociations();
        return [...this.nsgs.values()].map((n) => base(n.id, 'microsoft.network/networksecuritygroups', { properties: this.nsgJson(n, assoc).properties }));
      })(),
      ...[...vnets].map(([id, subs]) => base(id, 'microsoft.network/virtualnetworks', { properties: { provisioningState: 'Succeeded', subnets: subs.map((x) => this.subnetJson(x)) } })),
      ...[...this.scaleSets.values()].map((x) => base(x.id, 'microsoft.compute/virtualmachinescalesets', { sku: { name: 'Standard_B2s', capacity: x.instances.length }, properties: { orchestrationMode: 'Uniform', provisioningState: 'Succeeded' } })),
      ...[...this.docs.values()].filter((d) => /\/azurefirewalls\//i.test(d.id)).map((d) => base(d.id, 'microsoft.network/azurefirewalls', { properties: this.docJson(d).properties })),
      ...[...this.policies.values()].map((x) => base(x.id, 'microsoft.network/firewallpolicies', { properties: this.policyJson(x).properties })),
      ...[...this.publicIps.values()].map((x) => base(x.id, 'microsoft.network/publicipaddresses', { properties: { ipAddress: x.ip, publicIPAllocationMethod: 'Static' } })),
    ];
  }

  /**
   * POST /providers/Microsoft.ResourceGraph/resources, as the service answers (spec 2022-10-01:
   * QueryRequest → QueryResponse): validation, the caller's quota, the query over the tables,
   * rows the caller may read in the subscriptions asked for (none asked: every subscription, a
   * tenant query), paged by `$skipToken` when the result projects `id`.
   */
  private resourceGraph(method: string, query: URLSearchParams, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown>, send: Send): void {
    this.stats.graphQueries++;
    const apiVersion = query.get('api-version');
    this.graphRequests.push({ apiVersion, body });
    if (!this.resourceGraphEnabled) return send(400, { error: { code: 'NoRegisteredProviderFound', message: `No registered resource provider found for location 'global' and API version '${apiVersion}' for type 'resources'.` } });
    if (!apiVersion) return send(400, { error: { code: 'MissingApiVersionParameter', message: 'The api-version query parameter (?api-version=) is required for all requests.' } });
    if (!RESOURCE_GRAPH_API_VERSIONS.includes(apiVersion)) {
      return send(400, { error: { code: 'NoRegisteredProviderFound', message: `No registered resource provider found for location 'global' and API version '${apiVersion}' for type 'resources'. The supported api-versions are '${RESOURCE_GRAPH_API_VERSIONS.join(', ')}'. The supported locations are ', global'.` } });
    }
    if (method !== 'POST') return send(405, { error: { code: 'MethodNotAllowed', message: `The requested resource does not support http method '${method}'.` } });
    const bad = (message: string, details: Array<{ code: string; message: string }> = []) =>
      send(400, { error: { code: 'BadRequest', message: `Please provide below info when asking for support: timestamp = ${new Date().toISOString()}, correlationId = ${randomUUID()}.`, details: [{ code: 'InvalidQuery', message: 'Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying.' }, ...details, { code: 'Detail', message }] } });
    if (typeof body.query !== 'string' || !body.query.trim()) return bad('The request must carry a query (QueryRequest.query is required).');
    const subs = body.subscriptions;
    if (subs !== undefined && (!Array.isArray(subs) || subs.some((x) => typeof x !== 'string'))) return bad('subscriptions must be an array of subscription ids.');
    const options = (body.options ?? {}) as Record<string, unknown>;
    const top = options.$top;
    if (top !== undefined && (!Number.isInteger(top) || (top as number) < 1 || (top as number) > 1000)) return bad(`$top must be an integer from 1 to 1000, not ${JSON.stringify(top)}.`);
    const skip = options.$skip;
    if (skip !== undefined && (!Number.isInteger(skip) || (skip as number) < 0)) return bad(`$skip must be a non-negative integer, not ${JSON.stringify(skip)}.`);
    const format = options.resultFormat ?? (apiVersion < '2021-03-01' ? 'table' : 'objectArray');
    if (format !== 'table' && format !== 'objectArray') return bad(`resultFormat must be table or objectArray, not ${JSON.stringify(format)}.`);

    // The caller's quota (per principal, per window), counted on every query, pages included.
    const who = String(headers.authorization ?? '');
    const quota = this.opts.graphQuota ?? { queries: 15, windowMs: 5000 };
    const now = Date.now();
    let w = this.graphWindows.get(who);
    if (!w || now - w.start >= quota.windowMs) {
      w = { start: now, used: 0 };
      this.graphWindows.set(who, w);
    }
    const resetMs = w.start + quota.windowMs - now;
    const quotaHeaders = (remaining: number) => ({ 'x-ms-user-quota-remaining': String(Math.max(0, remaining)), 'x-ms-user-quota-resets-after': hhmmss(resetMs) });
    if (this.graphThrottle > 0 || w.used >= quota.queries) {
      const injected = this.graphThrottle > 0;
      if (injected) this.graphThrottle--;
      this.stats.graphThrottled429++;
      return send(
        429,
        { error: { code: 'RateLimiting', message: `Please provide below info when asking for support: timestamp = ${new Date().toISOString()}, correlationId = ${randomUUID()}.`, details: [{ code: 'RateLimiting', message: 'Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.' }] } },
        { ...quotaHeaders(injected ? quota.queries - w.used : 0), 'retry-after': String(injected ? this.graphRetryAfterS : Math.max(1, Math.ceil(resetMs / 1000))) },
      );
    }
    w.used++;

    let parsed;
    try {
      parsed = parseGraphQuery(body.query, (this.opts.graphTables ?? ['resources', 'computeresources']).map(lower));
    } catch (err) {
      if (!(err instanceof GraphQueryError)) throw err;
      return bad(err.message, [{ code: err.kind === 'UnknownTable' ? 'UnknownTable' : 'ParserFailure', message: err.kind === 'UnknownTable' ? err.message : 'ParserFailure' }]);
    }
    const scope = new Set(((subs as string[] | undefined) ?? []).map(lower));
    const evaluate = () => {
      const readable = this.graphRows(parsed.table).filter((r) => {
        const id = String(r.id);
        if (scope.size > 0 && !scope.has(lower(String(r.subscriptionId)))) return false;
        if (this.graphHidden.has(lower(id))) return false;
        if ([...this.deniedReads].some((d) => lower(id) === d || lower(id).startsWith(`${d}/`))) return false;
        return this.allowed(`${String(r.type)}/read`, id);
      });
      return runGraphQuery(parsed, readable);
    };

    // Paging: a $skipToken continues the same query over the same scope, at its offset, over the
    // result as it was when the first page was asked for (evaluated once, not once per page).
    const fingerprint = JSON.stringify([body.query, [...scope].sort(), who]);
    let offset = typeof skip === 'number' ? skip : 0;
    let result: { rows: GraphRow[]; columns: string[] } | undefined;
    if (typeof options.$skipToken === 'string') {
      let token: { o?: unknown; f?: unknown; s?: unknown } = {};
      try {
        token = JSON.parse(Buffer.from(options.$skipToken, 'base64').toString('utf8')) as { o?: unknown; f?: unknown; s?: unknown };
      } catch {
        /* refused below */
      }
      if (typeof token.o !== 'number' || token.f !== fingerprint) return bad('The $skipToken does not belong to this query and scope; send it with the same query and subscriptions it came with.', [{ code: 'InvalidSkipToken', message: 'InvalidSkipToken' }]);
      offset = token.o;
      result = typeof token.s === 'string' ? this.graphSnapshots.get(token.s) : undefined;
    }
    const snapshot = typeof options.$skipToken === 'string' && result ? (JSON.parse(Buffer.from(options.$skipToken, 'base64').toString('utf8')) as { s: string }).s : randomUUID();
    if (!result) {
      const t0 = performance.now();
      result = evaluate();
      this.graphEvalMs += performance.now() - t0;
      this.graphSnapshots.set(snapshot, result);
      // Keep the last few results only.
      for (const k of [...this.graphSnapshots.keys()].slice(0, Math.max(0, this.graphSnapshots.size - 8))) this.graphSnapshots.delete(k);
    }
    const { rows, columns } = result;
    const size = Math.min(typeof top === 'number' ? top : 1000, this.opts.graphPageSize ?? 1000);
    const page = rows.slice(offset, offset + size);
    const more = offset + page.length < rows.length;
    // The service pages only results it can sort stably: they must have an `id` column.
    const pageable = columns.includes('id');
    const data = format === 'table' ? { columns: columns.map((name) => ({ name, type: name === 'id' || name === 'name' || name === 'type' ? 'string' : 'object' })), rows: page.map((r) => columns.map((c) => r[c] ?? null)) } : page;
    send(
      200,
      {
        totalRecords: rows.length,
        count: page.length,
        data,
        facets: [],
        resultTruncated: more && !pageable ? 'true' : 'false',
        ...(more && pageable ? { $skipToken: Buffer.from(JSON.stringify({ o: offset + page.length, f: fingerprint, s: snapshot })).toString('base64') } : {}),
      },
      quotaHeaders(quota.queries - w.used),
    );
  }

  // ------------------------------------------------------------------ ARM

  /** Operations whose time has come end now (ARM finishes them whether or not anyone polls). */
  private settle(): void {
    const now = Date.now();
    for (const op of this.running) {
      if (op.doneAt <= now) {
        op.finalized = true;
        this.running.delete(op);
        op.finalize(op.outcome);
      }
    }
  }

  private allowed(action: string, path: string): boolean {
    if (!this.role.has(action)) return false;
    const scopes = this.opts.assignedScopes;
    if (!scopes) return true;
    const p = lower(path);
    return scopes.some((s) => p === lower(s) || p.startsWith(`${lower(s)}/`));
  }

  private forbid(send: Send, code: 'AuthorizationFailed' | 'LinkedAuthorizationFailed', action: string, scope: string): void {
    this.stats.forbidden403++;
    send(403, {
      error: {
        code,
        message: code === 'AuthorizationFailed'
          ? `The client does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid.`
          : `The client has permission to perform action on the resource, but does not have permission to perform action '${action}' on the linked scope(s) '${scope}' or the linked scope(s) are invalid.`,
      },
    });
  }

  /** ARM's linked-access check: every resource a write's body references needs its join action. */
  private linkedAccess(body: unknown, send: Send): boolean {
    const refs: Array<{ action: string; id: string }> = [];
    const walk = (v: unknown, key: string) => {
      if (Array.isArray(v)) return v.forEach((x) => walk(x, key));
      if (typeof v === 'string' && /^(source|destination)IpGroups$/i.test(key)) refs.push({ action: 'microsoft.network/ipgroups/join/action', id: v });
      if (!v || typeof v !== 'object') return;
      const o = v as Record<string, unknown>;
      if (/^(source|destination)ApplicationSecurityGroups$/i.test(key) && typeof o.id === 'string') refs.push({ action: 'microsoft.network/applicationsecuritygroups/joinnetworksecurityrule/action', id: o.id });
      if (key === 'subnet' && typeof o.id === 'string') refs.push({ action: 'microsoft.network/virtualnetworks/subnets/join/action', id: o.id });
      if (key === 'publicIPAddress' && typeof o.id === 'string') refs.push({ action: 'microsoft.network/publicipaddresses/join/action', id: o.id });
      for (const [k, x] of Object.entries(o)) walk(x, k);
    };
    walk(body, '');
    const missing = refs.find((r) => !this.allowed(r.action, r.id));
    if (missing) {
      this.forbid(send, 'LinkedAuthorizationFailed', missing.action, missing.id);
      return false;
    }
    return true;
  }

  private handle(method: string, path: string, query: URLSearchParams, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown>, send: Send): void {
    if (!String(headers.authorization ?? '').startsWith('Bearer ')) {
      return send(401, { error: { code: 'AuthenticationFailed', message: 'Authentication failed. The Authorization header is missing.' } });
    }
    this.settle();
    const key = lower(path);
    if (GRAPH_PATH.test(path)) return this.resourceGraph(method, query, headers, body, send);
    const op = /\/providers\/microsoft\.network\/locations\/[^/]+\/operations\/([^/]+)$/.exec(key);
    if (op && method === 'GET') {
      // An operation has no ETag: a poll carrying the PUT's If-Match is refused.
      if (headers['if-match']) return this.preconditionFailed(send);
      const o = this.ops.get(op[1]!);
      if (!o) return send(404, { error: { code: 'OperationNotFound', message: 'The operation was not found.' } });
      if (Date.now() < o.doneAt) return send(200, { status: 'InProgress' });
      return send(200, o.outcome === 'Succeeded' ? { status: 'Succeeded' } : { status: o.outcome, error: { code: o.code ?? o.outcome, message: `The operation ended ${o.outcome}: ${o.code ?? ''}` } });
    }
    if (!query.get('api-version')) return send(400, { error: { code: 'MissingApiVersionParameter', message: "The api-version query parameter (?api-version=) is required for all requests." } });
    const action = this.plugins.map((p) => p.actionOf?.(method, path)).find((a): a is string => Boolean(a)) ?? actionOf(method, path);
    const isRgList = /^\/subscriptions\/[^/]+\/resourcegroups$/.test(key);
    if (!isRgList && !this.allowed(action, path)) return this.forbid(send, 'AuthorizationFailed', action, path);
    if (isRgList && !this.role.has(action)) return this.forbid(send, 'AuthorizationFailed', action, path);
    if (method === 'GET') {
      this.stats.gets++;
      if (headers['if-match'] && !this.ifMatchOk(key, String(headers['if-match']))) return this.preconditionFailed(send);
      if ([...this.deniedReads].some((d) => key === d || key.startsWith(`${d}/`))) return this.forbid(send, 'AuthorizationFailed', action, path);
      const fault = this.readFaults.shift();
      if (fault) {
        this.stats.faults++;
        if ('status' in fault) return send(fault.status, { error: { code: fault.code, message: `injected ${fault.code}` } }, fault.headers ?? {});
        return; // no answer
      }
      if (this.readThrottle > 0) {
        this.readThrottle--;
        this.stats.throttled429++;
        return send(429, { error: { code: 'TooManyRequests', message: 'Number of read requests for subscription exceeded the limit.' } }, { 'retry-after': String(this.readRetryAfterS) });
      }
    }
    for (const plugin of this.plugins) if (plugin.handle({ method, path, key, query, headers, body }, send)) return;
    const notFound = (type: string) => send(404, { error: { code: 'ResourceNotFound', message: `The Resource '${type}' under resource group was not found.` } });
    const page = (items: unknown[]) => {
      const size = this.opts.pageSize ?? 50;
      const skip = Number(query.get('$skiptoken') ?? 0);
      const next = skip + size < items.length ? `${this.url}${path}?api-version=${query.get('api-version')}&$skiptoken=${skip + size}` : undefined;
      send(200, { value: items.slice(skip, skip + size), ...(next ? { nextLink: next } : {}) });
    };

    // ---- lists
    if (method === 'GET' && isRgList) {
      const sub = key.split('/')[2]!;
      const rgs = new Map<string, string>();
      for (const id of [...this.vms.keys(), ...this.nics.keys(), ...this.nsgs.keys(), ...this.docs.keys(), ...this.policies.keys(), ...this.subnets.keys()]) {
        const m = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\//.exec(id);
        if (m && m[1] === sub) rgs.set(m[2]!, `/subscriptions/${sub}/resourceGroups/${m[2]}`);
      }
      // ARM lists the resource groups the caller may read.
      return page([...rgs.values()].filter((id) => this.allowed(action, id)).map((id) => ({ id, name: id.split('/').pop(), location: 'westeurope', properties: { provisioningState: 'Succeeded' } })));
    }
    const inScope = (id: string, prefix: string) => lower(id).startsWith(`${prefix}/`);
    const ssList = /^(\/subscriptions\/[^/]+)\/providers\/microsoft\.compute\/virtualmachinescalesets$/.exec(key);
    if (ssList && method === 'GET') {
      return page([...this.scaleSets.values()].filter((x) => inScope(x.id, ssList[1]!)).map((x) => ({ id: x.id, name: x.name, type: 'Microsoft.Compute/virtualMachineScaleSets', location: 'westeurope', properties: { orchestrationMode: 'Uniform', provisioningState: 'Succeeded' } })));
    }
    const ssChild = /^(.*\/providers\/microsoft\.compute\/virtualmachinescalesets\/[^/]+)\/(virtualmachines|networkinterfaces)$/.exec(key);
    if (ssChild && method === 'GET') {
      if (!this.scaleSets.has(ssChild[1]!)) return notFound('Microsoft.Compute/virtualMachineScaleSets');
      if (ssChild[2] === 'virtualmachines') return page([...this.vms.values()].filter((v) => v.scaleSet && lower(v.scaleSet) === ssChild[1]).map((v) => this.vmJson(v)));
      return page([...this.nics.values()].filter((n) => n.vm && lower(n.vm).startsWith(`${ssChild[1]}/`)).map((n) => this.nicJson(n)));
    }
    if (/\/virtualmachinescalesets\/[^/]+\/virtualmachines\/[^/]+$/.test(key) && method === 'GET') {
      const vm = this.vms.get(key);
      return vm ? send(200, this.vmJson(vm)) : notFound('Microsoft.Compute/virtualMachineScaleSets/virtualMachines');
    }
    if (/\/virtualmachinescalesets\/[^/]+\/virtualmachines\/[^/]+\/networkinterfaces\/[^/]+$/.test(key) && method === 'GET') {
      if (query.get('api-version') !== '2018-10-01') return send(400, { error: { code: 'NoRegisteredProviderFound', message: `No registered resource provider found for API version '${query.get('api-version')}'.` } });
      const nic = this.nics.get(key);
      return nic ? send(200, this.nicJson(nic)) : notFound('Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces');
    }
    const subList = /^(\/subscriptions\/[^/]+)\/providers\/microsoft\.(compute|network)\/(virtualmachines|networkinterfaces|virtualnetworks)$/.exec(key);
    if (subList && method === 'GET') {
      const scope = subList[1]!;
      if (subList[3] === 'virtualmachines') return page([...this.vms.values()].filter((v) => inScope(v.id, scope) && !v.scaleSet).map((v) => this.vmJson(v)));
      if (subList[3] === 'networkinterfaces') return page([...this.nics.values()].filter((n) => inScope(n.id, scope) && !n.vm).map((n) => this.nicJson(n)));
      const vnets = new Map<string, Array<{ id: string; name: string; prefix: string; nsg?: string }>>();
      for (const s of this.subnets.values()) if (inScope(s.id, scope)) {
        const vnet = s.id.split('/subnets/')[0]!;
        vnets.set(vnet, [...(vnets.get(vnet) ?? []), s]);
      }
      return page([...vnets].map(([id, subnets]) => ({ id, name: id.split('/').pop(), type: 'Microsoft.Network/virtualNetworks', location: 'westeurope', properties: { provisioningState: 'Succeeded', subnets: subnets.map((s) => this.subnetJson(s)) } })));
    }
    const rgList = /^(\/subscriptions\/[^/]+\/resourcegroups\/[^/]+)\/providers\/microsoft\.network\/(networksecuritygroups|azurefirewalls|firewallpolicies)$/.exec(key);
    if (rgList && method === 'GET') {
      const scope = rgList[1]!;
      if (rgList[2] === 'networksecuritygroups') {
        const assoc = this.nsgAssociations();
        return page([...this.nsgs.values()].filter((n) => inScope(n.id, scope)).map((n) => this.nsgJson(n, assoc)));
      }
      if (rgList[2] === 'azurefirewalls') return page([...this.docs.values()].filter((d) => inScope(d.id, scope) && /\/azurefirewalls\//.test(lower(d.id))).map((d) => this.docJson(d)));
      return page([...this.policies.values()].filter((p) => inScope(p.id, scope)).map((p) => ({ id: p.id, name: p.id.split('/').pop(), type: 'Microsoft.Network/firewallPolicies', location: 'westeurope', properties: { provisioningState: 'Succeeded' } })));
    }
    const rcgList = /^(.*\/providers\/microsoft\.network\/firewallpolicies\/[^/]+)\/rulecollectiongroups$/.exec(key);
    if (rcgList && method === 'GET') {
      if (!this.policies.has(rcgList[1]!)) return notFound('Microsoft.Network/firewallPolicies');
      return page([...this.docs.values()].filter((d) => lower(d.id).startsWith(`${rcgList[1]}/rulecollectiongroups/`)).map((d) => this.docJson(d)));
    }

    // ---- compute and network reads
    if (/\/providers\/microsoft\.network\/publicipaddresses\/[^/]+$/.test(key) && method === 'GET') {
      const p = this.publicIps.get(key);
      if (!p) return notFound('Microsoft.Network/publicIPAddresses');
      return send(200, { id: p.id, name: p.id.split('/').pop(), type: 'Microsoft.Network/publicIPAddresses', location: 'westeurope', properties: { provisioningState: 'Succeeded', ipAddress: p.ip, publicIPAllocationMethod: 'Static' } });
    }
    if (/\/providers\/microsoft\.network\/firewallpolicies\/[^/]+$/.test(key) && method === 'GET') {
      const p = this.policies.get(key);
      if (!p) return notFound('Microsoft.Network/firewallPolicies');
      return send(200, this.policyJson(p));
    }
    if (/\/providers\/microsoft\.compute\/virtualmachines\/[^/]+$/.test(key) && method === 'GET') {
      const vm = this.vms.get(key);
      if (!vm) return notFound('Microsoft.Compute/virtualMachines');
      return send(200, this.vmJson(vm));
    }
    if (/\/providers\/microsoft\.network\/networkinterfaces\/[^/]+$/.test(key) && method === 'GET') {
      const nic = this.nics.get(key);
      if (!nic) return notFound('Microsoft.Network/networkInterfaces');
      return send(200, this.nicJson(nic));
    }
    if (/\/providers\/microsoft\.network\/virtualnetworks\/[^/]+\/subnets\/[^/]+$/.test(key) && method === 'GET') {
      const s = this.subnets.get(key);
      if (!s) return notFound('Microsoft.Network/virtualNetworks/subnets');
      return send(200, this.subnetJson(s));
    }

    // ---- NSGs and their rules
    const ruleM = /^(.*\/providers\/microsoft\.network\/networksecuritygroups\/[^/]+)\/securityrules\/([^/]+)$/.exec(key);
    if (ruleM) {
      const nsg = this.nsgs.get(ruleM[1]!);
      if (!nsg) return notFound('Microsoft.Network/networkSecurityGroups');
      const name = decodeURIComponent(path.split('/').pop()!);
      const existing = nsg.rules.find((r) => lower(r.name) === lower(name));
      if (method === 'GET') return existing ? send(200, this.ruleJson(nsg, existing), { etag: existing.etag ?? nsg.etag }) : notFound('Microsoft.Network/networkSecurityGroups/securityRules');
      if (method === 'PUT') return this.putRule(nsg, name, existing, headers, body, send);
      if (method === 'DELETE') return this.deleteRule(nsg, existing, send);
    }
    if (/\/providers\/microsoft\.network\/networksecuritygroups\/[^/]+$/.test(key)) {
      const nsg = this.nsgs.get(key);
      if (!nsg) return notFound('Microsoft.Network/networkSecurityGroups');
      if (method === 'GET') return send(200, this.nsgJson(nsg), { etag: nsg.etag });
      if (method === 'PUT') return this.putNsg(nsg, headers, body, send);
    }

    // ---- firewalls and rule collection groups
    const fw = /\/providers\/microsoft\.network\/azurefirewalls\/[^/]+$/.test(key);
    const rcg = /^(.*\/providers\/microsoft\.network\/firewallpolicies\/[^/]+)\/rulecollectiongroups\/[^/]+$/.exec(key);
    if (fw || rcg) {
      let doc = this.docs.get(key);
      const policy = rcg ? this.policies.get(rcg[1]!) : undefined;
      if (rcg && !policy) return notFound('Microsoft.Network/firewallPolicies');
      if (!doc && method === 'GET') return notFound(fw ? 'Microsoft.Network/azureFirewalls' : 'Microsoft.Network/firewallPolicies/ruleCollectionGroups');
      if (method === 'GET') return send(200, this.docJson(doc!), { etag: doc!.etag });
      if (method !== 'PUT') return send(405, { error: { code: 'MethodNotAllowed', message: method } });
      if (!doc && fw) return notFound('Microsoft.Network/azureFirewalls');
      const creating = !doc;
      const target = doc ?? { id: path, name: path.split('/').pop()!, location: 'westeurope', etag: '', properties: {}, busyUntil: 0, provisioningState: 'Succeeded' };
      // One operation at a time per firewall, and per firewall policy across its groups.
      const busy = { etag: target.etag, busyUntil: Math.max(target.busyUntil, policy?.busyUntil ?? 0) };
      if (!this.admit(busy, headers, send, path, creating)) return;
      if (!this.linkedAccess(body, send)) return;
      const props = { ...((body.properties ?? {}) as Record<string, unknown>) };
      delete props.provisioningState;
      if (rcg && !/^[a-z0-9](?:[a-z0-9_.-]{0,78}[a-z0-9_])?$/i.test(path.split('/').pop()!)) return send(400, { error: { code: 'InvalidResourceName', message: `Resource name ${path.split('/').pop()} is invalid.` } });
      // The error code and wording are assumed (Microsoft documents the limit, not ARM's answer).
      const over = this.dnatOverLimit(path, props);
      if (over) return send(400, { error: { code: 'AzureFirewallNatRuleLimitReached', message: `Azure Firewall ${over.firewall} would have ${over.count} DNAT destinations (public IP addresses + unique destination address, port and protocol); at most 250 are supported.` } });
      // Two DNAT rules for the same destination from the same sources cannot both apply. Rules for one
      // destination from different sources can (Microsoft's limits page: 500 rules to one address and
      // port are one destination); the bot never writes either, its pool ports are free ones.
      const seen = new Set<string>();
      for (const r of this.natRulesOf(path, props)) {
        const src = [...((r.sourceAddresses as string[] | undefined) ?? [])].sort().join(',');
        for (const a of (r.destinationAddresses as string[] | undefined) ?? []) for (const p of (r.destinationPorts as string[] | undefined) ?? []) for (const x of ((r.ipProtocols ?? r.protocols) as string[] | undefined) ?? ['any']) {
          const k = `${a}:${p}/${x} from ${src}`.toLowerCase();
          if (seen.has(k)) return send(400, { error: { code: 'AzureFirewallNatRuleDuplicate', message: `More than one DNAT rule for ${a}:${p} from ${src || 'any'}` } });
          seen.add(k);
        }
      }
      if (creating) {
        doc = target;
        this.docs.set(key, doc);
      }
      const d = doc!;
      this.stats.puts++;
      const before = d.properties;
      d.properties = props;
      d.provisioningState = 'Updating';
      const latency = this.opts.firewallLatencyMs ?? this.opts.latencyMs ?? 0;
      this.commit(d, path, latency, (outcome) => {
        if (outcome === 'Canceled') d.properties = before;
        d.provisioningState = outcome === 'Succeeded' ? 'Succeeded' : outcome === 'Canceled' ? 'Succeeded' : 'Failed';
        if (creating && outcome === 'Canceled') this.docs.delete(key);
      }, () => this.docJson(d), send, creating ? 201 : 200, policy);
      return;
    }
    send(404, { error: { code: 'InvalidResourceType', message: `no emulated route for ${method} ${path}` } });
  }

  private ifMatchOk(key: string, ifMatch: string): boolean {
    if (ifMatch === '*') return true;
    const etag = this.nsgs.get(key)?.etag ?? this.docs.get(key)?.etag;
    return etag === undefined || etag === ifMatch;
  }

  private preconditionFailed(send: Send): void {
    this.stats.preconditionFailed412++;
    send(412, { error: { code: 'PreconditionFailed', message: 'The condition specified using HTTP conditional header(s) is not met.' } });
  }

  /** ARM's gatekeeping for a write: faults, throttling, locks, one operation at a time, If-Match / If-None-Match. */
  private admit(res: { etag: string; busyUntil: number }, headers: Record<string, string | string[] | undefined>, send: Send, path: string, absent = false): boolean {
    const fault = this.faults[0] && !('lro' in this.faults[0]) ? this.faults.shift() : undefined;
    this.answer = undefined;
    if (fault) {
      this.stats.faults++;
      if ('status' in fault) {
        if (fault.status === 409) this.stats.conflicts409++;
        send(fault.status, { error: { code: fault.code, message: `injected ${fault.code}` } }, fault.headers ?? {});
        return false;
      }
      if ('hang' in fault && fault.hang === 'before') return false; // no answer, nothing applied
      this.answer = fault;
    }
    if (this.throttle > 0) {
      this.throttle--;
      this.stats.throttled429++;
      send(429, { error: { code: 'RetryableError', message: 'Too many requests; retry after the interval in Retry-After.' } }, { 'retry-after': String(this.retryAfterS) });
      return false;
    }
    const p = lower(path);
    const lock = [...this.locks].find((s) => p === s || p.startsWith(`${s}/`));
    if (lock) {
      send(409, { error: { code: 'ScopeLocked', message: `The scope '${lock}' cannot perform write operation because following scope(s) are locked: '${lock}'. Please remove the lock and try again.` } });
      return false;
    }
    if (res.busyUntil > Date.now()) {
      this.stats.conflicts409++;
      send(409, { error: { code: 'AnotherOperationInProgress', message: 'Another operation on this or dependent resource is in progress. To retry later, please wait for the operation to complete.' } });
      return false;
    }
    const ifMatch = headers['if-match'];
    if (ifMatch && ifMatch !== '*' && (absent || ifMatch !== res.etag)) {
      this.preconditionFailed(send);
      return false;
    }
    if (headers['if-none-match'] === '*' && !absent) {
      this.preconditionFailed(send);
      return false;
    }
    return true;
  }

  /**
   * Starts a write's operation: new ETag, busy for `latencyMs`, answered at once with the goal state
   * (provisioningState Updating) + Azure-AsyncOperation; the operation ends as injected (default
   * Succeeded) and `finalize` applies its end.
   */
  private commit(
    res: { id: string; etag: string; busyUntil: number },
    id: string,
    latencyMs: number,
    finalize: (outcome: 'Succeeded' | 'Failed' | 'Canceled') => void,
    json: () => unknown,
    send: Send,
    status: number,
    alsoBusy?: { busyUntil: number },
  ): void {
    res.etag = `W/"${randomUUID()}"`;
    res.busyUntil = Date.now() + latencyMs;
    if (alsoBusy) alsoBusy.busyUntil = res.busyUntil;
    const lro = this.faults[0] && 'lro' in this.faults[0] ? (this.faults.shift() as Extract<Fault, { lro: string }>) : undefined;
    if (lro) this.stats.faults++;
    const opId = randomUUID();
    const operation: Operation = { doneAt: res.busyUntil, outcome: lro?.lro ?? 'Succeeded', ...(lro ? { code: lro.code } : {}), finalize, finalized: false };
    this.ops.set(opId, operation);
    this.running.add(operation);
    this.writes.push({ at: Date.now(), nsg: id, rules: 0 });
    const sub = id.split('/')[2];
    const answer = this.answer;
    this.answer = undefined;
    const payload = json();
    if (answer && 'hang' in answer) return; // applied, but the answer is lost
    const reply = (s: number, p: unknown, headers: Record<string, string>) => (answer && 'slowMs' in answer ? void setTimeout(() => send(s, p, headers), answer.slowMs) : send(s, p, headers));
    reply(status, payload, {
      'azure-asyncoperation': `${this.url}/subscriptions/${sub}/providers/Microsoft.Network/locations/westeurope/operations/${opId}?api-version=2024-05-01`,
      ...(status === 202 ? {} : { etag: res.etag }),
    });
  }

  private vmJson(vm: { id: string; name: string; location: string; nics: string[]; primary?: number }) {
    return {
      id: vm.id, name: vm.name, type: 'Microsoft.Compute/virtualMachines', location: vm.location,
      properties: { provisioningState: 'Succeeded', networkProfile: { networkInterfaces: vm.nics.map((id, i) => ({ id, properties: { primary: i === (vm.primary ?? 0) } })) } },
    };
  }

  private nicJson(nic: { id: string; name: string; ips: Array<{ ip: string; subnet: string }>; nsg?: string; vm?: string }) {
    return {
      id: nic.id, name: nic.name, type: 'Microsoft.Network/networkInterfaces', location: 'westeurope', etag: 'W/"1"',
      properties: {
        provisioningState: 'Succeeded',
        ...(nic.vm ? { virtualMachine: { id: nic.vm } } : {}),
        ipConfigurations: nic.ips.map((c, i) => ({
          id: `${nic.id}/ipConfigurations/ipconfig${i + 1}`, name: `ipconfig${i + 1}`,
          properties: { privateIPAddress: c.ip, privateIPAddressVersion: c.ip.includes(':') ? 'IPv6' : 'IPv4', privateIPAllocationMethod: 'Dynamic', primary: i === 0, subnet: { id: c.subnet } },
        })),
        ...(nic.nsg ? { networkSecurityGroup: { id: nic.nsg } } : {}),
      },
    };
  }

  private subnetJson(s: { id: string; name: string; prefix: string; nsg?: string }) {
    return { id: s.id, name: s.name, etag: 'W/"1"', properties: { provisioningState: 'Succeeded', addressPrefix: s.prefix, ...(s.nsg ? { networkSecurityGroup: { id: s.nsg } } : {}) } };
  }

  private docJson(d: Doc) {
    const fw = /\/azurefirewalls\//.test(lower(d.id));
    return { id: d.id, name: d.name, ...(fw ? { location: d.location, type: 'Microsoft.Network/azureFirewalls' } : { type: 'Microsoft.Network/FirewallPolicies/RuleCollectionGroups' }), etag: d.etag, properties: { ...d.properties, provisioningState: d.provisioningState } };
  }

  private ruleJson(nsg: Nsg, r: ArmRule) {
    return { id: `${nsg.id}/securityRules/${r.name}`, name: r.name, etag: r.etag ?? nsg.etag, type: 'Microsoft.Network/networkSecurityGroups/securityRules', properties: { ...r.properties, provisioningState: r.properties.provisioningState ?? 'Succeeded' } };
  }

  /** Which subnets and NICs each NSG is associated with (ARM shows them on the NSG, read-only). */
  private nsgAssociations(): Map<string, { subnets: string[]; nics: string[] }> {
    const out = new Map<string, { subnets: string[]; nics: string[] }>();
    const at = (nsg: string) => out.get(lower(nsg)) ?? (out.set(lower(nsg), { subnets: [], nics: [] }), out.get(lower(nsg))!);
    for (const sn of this.subnets.values()) if (sn.nsg) at(sn.nsg).subnets.push(sn.id);
    for (const n of this.nics.values()) if (n.nsg) at(n.nsg).nics.push(n.id);
    return out;
  }

  private nsgJson(nsg: Nsg, assoc = this.nsgAssociations()) {
    const a = assoc.get(lower(nsg.id));
    return {
      id: nsg.id, name: nsg.name, type: 'Microsoft.Network/networkSecurityGroups', location: nsg.location, etag: nsg.etag,
      properties: {
        provisioningState: nsg.busyUntil > Date.now() ? 'Updating' : 'Succeeded',
        securityRules: nsg.rules.map((r) => this.ruleJson(nsg, r)),
        defaultSecurityRules: [],
        // Absent, not empty, when nothing is associated (Resource Graph's isnull() relies on it).
        ...(a?.subnets.length ? { subnets: a.subnets.map((id) => ({ id })) } : {}),
        ...(a?.nics.length ? { networkInterfaces: a.nics.map((id) => ({ id })) } : {}),
      },
    };
  }

  /** ARM's validation of one rule among the NSG's others; an error answer, or null. */
  private validateRule(nsg: Nsg, r: ArmRule, others: ArmRule[]): { status: number; code: string; message: string } | null {
    const p = r.properties;
    if (!r.name || r.name.length > 80) return { status: 400, code: 'InvalidResourceName', message: `Resource name ${r.name} is invalid. The name can be up to 80 characters long.` };
    if (p.description && p.description.length > 140) return { status: 400, code: 'SecurityRuleDescriptionTooLong', message: `Security rule ${r.name} description exceeds 140 characters.` };
    if (!Number.isInteger(p.priority) || p.priority < 100 || p.priority > 4096) {
      return { status: 400, code: 'SecurityRuleInvalidPriority', message: `Security rule ${r.name} has invalid priority ${p.priority}. Value provided: ${p.priority} Allowed range 100-4096.` };
    }
    const other = others.find((o) => lower(o.name) !== lower(r.name) && o.properties.direction === p.direction && o.properties.priority === p.priority);
    if (other) {
      this.stats.ruleConflicts400++;
      return { status: 400, code: 'SecurityRuleConflict', message: `Security rule ${r.name} conflicts with rule ${other.name}. Rules cannot have the same Priority and Direction.` };
    }
    const prefixes = [p.sourceAddressPrefix, ...(p.sourceAddressPrefixes ?? []), p.destinationAddressPrefix, ...(p.destinationAddressPrefixes ?? [])].filter((x): x is string => Boolean(x) && /[.:]/.test(x!) && x !== '*');
    if (prefixes.some((x) => x.includes(':')) && prefixes.some((x) => !x.includes(':'))) {
      return { status: 400, code: 'ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies', message: `Resource ${nsg.id}/securityRules/${r.name} contains IP addresses or prefixes that belong to different address families.` };
    }
    const all = [...others.filter((o) => lower(o.name) !== lower(r.name)), r];
    if (all.length > 1000) return { status: 400, code: 'SecurityRulesLimitReached', message: `Network security group ${nsg.name} cannot have more than 1000 security rules.` };
    const count = all.reduce((n, x) => n + (x.properties.sourceAddressPrefixes?.length ?? 1) + (x.properties.destinationAddressPrefixes?.length ?? 1), 0);
    if (count > 4000) return { status: 400, code: 'SecurityRuleAddressPrefixesLimitReached', message: `Network security group ${nsg.name} cannot have more than 4000 address prefixes across its rules.` };
    return null;
  }

  private putRule(nsg: Nsg, name: string, existing: ArmRule | undefined, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown>, send: Send): void {
    const ruleEtag = existing?.etag ?? nsg.etag;
    if (!this.admit({ etag: existing ? ruleEtag : '', busyUntil: nsg.busyUntil }, headers, send, `${nsg.id}/securityRules/${name}`, !existing)) return;
    if (!this.linkedAccess(body, send)) return;
    const props = { ...((body.properties ?? {}) as ArmRule['properties']) };
    delete props.provisioningState;
    const rule: ArmRule = { name, properties: props };
    if (!this.policyAllows(`${nsg.id}/securityRules/${name}`, [rule], send)) return;
    const bad = this.validateRule(nsg, rule, nsg.rules);
    if (bad) return send(bad.status, { error: { code: bad.code, message: bad.message } });
    const before = existing ? { ...existing, properties: { ...existing.properties } } : undefined;
    this.stats.puts++;
    rule.properties.provisioningState = 'Updating';
    rule.etag = `W/"${randomUUID()}"`;
    if (existing) nsg.rules[nsg.rules.indexOf(existing)] = rule;
    else nsg.rules.push(rule);
    this.commit(nsg, nsg.id, this.opts.latencyMs ?? 0, (outcome) => {
      const i = nsg.rules.indexOf(rule);
      if (outcome === 'Canceled') {
        // Superseded: the rule is as it was.
        if (i >= 0) before ? (nsg.rules[i] = before) : nsg.rules.splice(i, 1);
      } else if (i >= 0) rule.properties.provisioningState = outcome === 'Succeeded' ? 'Succeeded' : 'Failed';
    }, () => this.ruleJson(nsg, rule), send, existing ? 200 : 201);
    this.writes[this.writes.length - 1]!.rules = nsg.rules.length;
  }

  private deleteRule(nsg: Nsg, existing: ArmRule | undefined, send: Send): void {
    if (!existing) return send(204, undefined);
    if (!this.admit({ etag: '', busyUntil: nsg.busyUntil }, {}, send, `${nsg.id}/securityRules/${existing.name}`)) return;
    this.stats.deletes++;
    const i = nsg.rules.indexOf(existing);
    nsg.rules.splice(i, 1);
    this.commit(nsg, nsg.id, this.opts.latencyMs ?? 0, (outcome) => {
      // A delete that did not go through leaves the rule (Failed: in a failed state).
      if (outcome !== 'Succeeded') nsg.rules.push({ ...existing, properties: { ...existing.properties, provisioningState: outcome === 'Failed' ? 'Failed' : 'Succeeded' } });
    }, () => undefined, send, 202);
    this.writes[this.writes.length - 1]!.rules = nsg.rules.length;
  }

  /**
   * A whole-NSG PUT (the bot's batched writes, and what other tools do): the role needs
   * networkSecurityGroups/write (checked with every call), and every rule in the body is checked:
   * linked access of its references (ASGs), Azure Policy, validation.
   */
  private putNsg(nsg: Nsg, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown>, send: Send): void {
    // Authorization (linked access) and Azure Policy are checked before the resource provider sees the write.
    if (!this.linkedAccess(body, send)) return;
    const props = (body.properties ?? {}) as { securityRules?: ArmRule[] };
    const rules = (props.securityRules ?? []).map((r) => ({ name: r.name, properties: { ...r.properties } }));
    if (!this.policyAllows(nsg.id, rules, send)) return;
    if (!this.admit(nsg, headers, send, nsg.id)) return;
    for (const r of rules) {
      delete r.properties.provisioningState;
      const bad = this.validateRule(nsg, r, rules);
      if (bad) return send(bad.status, { error: { code: bad.code, message: bad.message } });
    }
    this.stats.puts++;
    this.stats.nsgPuts++;
    const before = nsg.rules;
    nsg.rules = rules.map((r) => ({ ...r, properties: { ...r.properties, provisioningState: 'Updating' } }));
    this.commit(nsg, nsg.id, this.opts.latencyMs ?? 0, (outcome) => {
      if (outcome === 'Canceled') nsg.rules = before;
      else for (const r of nsg.rules) r.properties.provisioningState = outcome === 'Succeeded' ? 'Succeeded' : 'Failed';
    }, () => this.nsgJson(nsg), send, 200);
    this.writes[this.writes.length - 1]!.rules = rules.length;
  }
}

/** A duration as Resource Graph writes x-ms-user-quota-resets-after: hh:mm:ss. */
function hhmmss(ms: number): string {
  const t = Math.max(0, Math.ceil(ms / 1000));
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(Math.floor(t / 3600))}:${p(Math.floor((t % 3600) / 60))}:${p(t % 60)}`;
}

/** Unique DNAT destinations of these rules: destination address × port × protocol, as Azure Firewall counts them. */
function dnatDestinations(rules: Array<Record<string, unknown>>): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    const protos = ((r.ipProtocols ?? r.protocols) as string[] | undefined) ?? ['any'];
    for (const a of (r.destinationAddresses as string[] | undefined) ?? []) for (const p of (r.destinationPorts as string[] | undefined) ?? []) for (const x of protos) out.add(`${a}|${p}|${x}`.toLowerCase());
  }
  return out;
}

/** A firewall's public IP addresses (its IP configurations that have one). */
function publicIpCount(props: Record<string, unknown>): number {
  return ((props.ipConfigurations as Array<{ properties?: { publicIPAddress?: unknown } }> | undefined) ?? []).filter((c) => c.properties?.publicIPAddress).length;
}
