// A small Azure Resource Manager emulator on 127.0.0.1 over HTTPS (the ARM SDK refuses plain
// http): VMs, NICs, subnets and network security groups, answered as ARM documents them. NSG
// PUTs follow ARM's rules: ETag / If-Match (412 PreconditionFailed), one operation at a time per
// NSG (409 AnotherOperationInProgress), unique priority per direction (400 SecurityRuleConflict),
// 201 + Azure-AsyncOperation polled to Succeeded, optional latency, 429 bursts with Retry-After
// and injected faults. The real adapter reaches it by configuration only (AZURE_ARM_ENDPOINT,
// AZURE_ARM_CA_FILE, AZURE_ACCESS_TOKEN).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
    description?: string;
    provisioningState?: string;
  };
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
 * the write but never answers (the answer is lost), `slowMs` applies it and answers late.
 */
export type Fault = { status: number; code: string; headers?: Record<string, string> } | { hang: 'before' | 'after' } | { slowMs: number };

export interface ArmStats {
  puts: number;
  conflicts409: number;
  preconditionFailed412: number;
  throttled429: number;
  ruleConflicts400: number;
  faults: number;
}

const lower = (s: string) => s.toLowerCase();

/** A self-signed certificate for 127.0.0.1 (openssl), written to a temp dir. */
export function selfSignedCert(): { key: string; cert: string; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'arm-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

export class ArmEmulator {
  readonly stats: ArmStats = { puts: 0, conflicts409: 0, preconditionFailed412: 0, throttled429: 0, ruleConflicts400: 0, faults: 0 };
  /** Every NSG write (time, NSG, number of rules after it). */
  readonly writes: Array<{ at: number; nsg: string; rules: number }> = [];
  /** Every request (method and path), to check the bot's Azure role covers what it calls. */
  readonly calls: Array<{ method: string; path: string }> = [];
  private server: Server;
  private vms = new Map<string, { id: string; name: string; location: string; nics: string[] }>();
  private nics = new Map<string, { id: string; name: string; ips: Array<{ ip: string; subnet: string }>; nsg?: string }>();
  private subnets = new Map<string, { id: string; name: string; prefix: string; nsg?: string }>();
  private nsgs = new Map<string, Nsg>();
  /** Azure Firewalls and Firewall Policy rule collection groups, kept as ARM's wire JSON. */
  private docs = new Map<string, { id: string; name: string; location: string; etag: string; properties: Record<string, unknown>; busyUntil: number }>();
  private policies = new Set<string>();
  private ops = new Map<string, number>();
  private faults: Fault[] = [];
  /** How the write being committed is answered (set by admit() from a network fault). */
  private answer: Fault | undefined;
  private throttle = 0;
  private retryAfterS = 1;
  readonly certFile: string;
  url = '';

  constructor(private readonly opts: { latencyMs?: number } = {}) {
    const tls = selfSignedCert();
    this.certFile = tls.certFile;
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
        const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
          res.end(payload === undefined ? '' : JSON.stringify(payload));
        };
        try {
          this.calls.push({ method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]! });
          this.handle(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!, req.headers, body, send);
        } catch (err) {
          send(500, { error: { code: 'InternalServerError', message: String(err) } });
        }
      });
    });
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

  addVm(id: string, nics: string[], location = 'westeurope'): string {
    this.vms.set(lower(id), { id, name: id.split('/').pop()!, location, nics });
    return id;
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
  standardVm(sub: string, rg: string, name: string, ip: string) {
    const base = `/subscriptions/${sub}/resourceGroups/${rg}/providers`;
    const subnetNsg = this.nsgs.has(lower(`${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`))
      ? `${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`
      : this.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/${rg}-subnet-nsg`);
    const subnet = this.subnets.has(lower(`${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`))
      ? `${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`
      : this.addSubnet(`${base}/Microsoft.Network/virtualNetworks/${rg}-vnet/subnets/default`, '10.0.0.0/24', subnetNsg);
    const nicNsg = this.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/${name}-nsg`);
    const nic = this.addNic(`${base}/Microsoft.Network/networkInterfaces/${name}-nic`, [{ ip, subnet }], nicNsg);
    const vm = this.addVm(`${base}/Microsoft.Compute/virtualMachines/${name}`, [nic]);
    return { vm, nic, nicNsg, subnet, subnetNsg };
  }

  /** An Azure Firewall (classic rules) with a public IP. */
  addFirewall(id: string, publicIp: string): string {
    this.docs.set(lower(id), {
      id, name: id.split('/').pop()!, location: 'westeurope', etag: `W/"${randomUUID()}"`, busyUntil: 0,
      properties: {
        sku: { name: 'AZFW_VNet', tier: 'Standard' },
        threatIntelMode: 'Alert',
        ipConfigurations: [{ name: 'ipconfig1', properties: { privateIPAddress: '10.100.0.4', publicIPAddress: { id: `${id.split('/providers/')[0]}/providers/Microsoft.Network/publicIPAddresses/fw-pip` } } }],
        natRuleCollections: [],
        networkRuleCollections: [],
        applicationRuleCollections: [],
      },
    });
    this.fwIps.set(lower(id), publicIp);
    return id;
  }
  private fwIps = new Map<string, string>();

  /** A Firewall Policy; its rule collection groups are created by PUT. */
  addFirewallPolicy(id: string): string {
    this.policies.add(lower(id));
    return id;
  }

  /** DNAT rules on a firewall (classic) or in a rule collection group, flattened. */
  natRules(resourceId: string): Array<Record<string, unknown>> {
    const d = this.docs.get(lower(resourceId));
    if (!d) return [];
    if (/\/rulecollectiongroups\//.test(lower(resourceId))) {
      return ((d.properties.ruleCollections ?? []) as Array<{ ruleCollectionType: string; rules?: Array<Record<string, unknown>> }>).filter((c) => c.ruleCollectionType === 'FirewallPolicyNatRuleCollection').flatMap((c) => c.rules ?? []);
    }
    return ((d.properties.natRuleCollections ?? []) as Array<{ properties?: { rules?: Array<Record<string, unknown>> } }>).flatMap((c) => c.properties?.rules ?? []);
  }

  rules(nsgId: string): ArmRule[] {
    return this.nsgs.get(lower(nsgId))?.rules ?? [];
  }

  /** Changes a rule behind the bot's back (another admin, a policy). */
  addForeignRule(nsgId: string, rule: ArmRule): void {
    const nsg = this.nsgs.get(lower(nsgId))!;
    nsg.rules.push(rule);
    nsg.etag = `W/"${randomUUID()}"`;
  }

  /** The next PUTs fail with these answers, in order. */
  failNext(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** Drops faults not yet consumed. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** The next `n` PUTs are throttled with 429 and Retry-After. */
  throttleNext(n: number, retryAfterS = 1): void {
    this.throttle = n;
    this.retryAfterS = retryAfterS;
  }

  // ------------------------------------------------------------------ ARM

  private handle(
    method: string,
    path: string,
    headers: Record<string, string | string[] | undefined>,
    body: Record<string, unknown>,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
  ): void {
    if (!String(headers.authorization ?? '').startsWith('Bearer ')) {
      return send(401, { error: { code: 'AuthenticationFailed', message: 'Authentication failed. The Authorization header is missing.' } });
    }
    const key = lower(path);
    const op = /\/providers\/microsoft\.network\/locations\/[^/]+\/operations\/([^/]+)$/.exec(key);
    if (op && method === 'GET') {
      const done = this.ops.get(op[1]!) ?? 0;
      return send(200, { status: Date.now() >= done ? 'Succeeded' : 'InProgress' });
    }
    const notFound = (type: string) => send(404, { error: { code: 'ResourceNotFound', message: `The Resource '${type}' under resource group was not found.` } });
    const list = /^\/subscriptions\/([^/]+)\/providers\/microsoft\.compute\/virtualmachines$/.exec(key);
    if (list && method === 'GET') {
      const value = [...this.vms.values()].filter((vm) => lower(vm.id).startsWith(`/subscriptions/${list[1]}/`)).map((vm) => ({
        id: vm.id, name: vm.name, type: 'Microsoft.Compute/virtualMachines', location: vm.location,
        properties: { provisioningState: 'Succeeded', networkProfile: { networkInterfaces: vm.nics.map((id, i) => ({ id, properties: { primary: i === 0 } })) } },
      }));
      return send(200, { value });
    }
    if (/\/providers\/microsoft\.compute\/virtualmachines\/[^/]+$/.test(key) && method === 'GET') {
      const vm = this.vms.get(key);
      if (!vm) return notFound('Microsoft.Compute/virtualMachines');
      return send(200, {
        id: vm.id, name: vm.name, type: 'Microsoft.Compute/virtualMachines', location: vm.location,
        properties: { provisioningState: 'Succeeded', networkProfile: { networkInterfaces: vm.nics.map((id, i) => ({ id, properties: { primary: i === 0 } })) } },
      });
    }
    if (/\/providers\/microsoft\.network\/networkinterfaces\/[^/]+$/.test(key) && method === 'GET') {
      const nic = this.nics.get(key);
      if (!nic) return notFound('Microsoft.Network/networkInterfaces');
      return send(200, {
        id: nic.id, name: nic.name, type: 'Microsoft.Network/networkInterfaces', location: 'westeurope', etag: 'W/"1"',
        properties: {
          provisioningState: 'Succeeded',
          ipConfigurations: nic.ips.map((c, i) => ({ id: `${nic.id}/ipConfigurations/ipconfig${i + 1}`, name: `ipconfig${i + 1}`, properties: { privateIPAddress: c.ip, privateIPAllocationMethod: 'Dynamic', primary: i === 0, subnet: { id: c.subnet } } })),
          ...(nic.nsg ? { networkSecurityGroup: { id: nic.nsg } } : {}),
        },
      });
    }
    if (/\/providers\/microsoft\.network\/virtualnetworks\/[^/]+\/subnets\/[^/]+$/.test(key) && method === 'GET') {
      const s = this.subnets.get(key);
      if (!s) return notFound('Microsoft.Network/virtualNetworks/subnets');
      return send(200, { id: s.id, name: s.name, etag: 'W/"1"', properties: { provisioningState: 'Succeeded', addressPrefix: s.prefix, ...(s.nsg ? { networkSecurityGroup: { id: s.nsg } } : {}) } });
    }
    if (/\/providers\/microsoft\.network\/networksecuritygroups\/[^/]+$/.test(key)) {
      const nsg = this.nsgs.get(key);
      if (!nsg) return notFound('Microsoft.Network/networkSecurityGroups');
      if (method === 'GET') return send(200, this.nsgJson(nsg), { etag: nsg.etag });
      if (method === 'PUT') return this.putNsg(nsg, headers, body, send);
    }
    const fw = /\/providers\/microsoft\.network\/azurefirewalls\/[^/]+$/.test(key);
    const rcg = /^(.*\/providers\/microsoft\.network\/firewallpolicies\/[^/]+)\/rulecollectiongroups\/[^/]+$/.exec(key);
    if (fw || rcg) {
      let doc = this.docs.get(key);
      if (!doc && rcg && method === 'PUT' && this.policies.has(rcg[1]!)) {
        doc = { id: path, name: path.split('/').pop()!, location: 'westeurope', etag: '', properties: {}, busyUntil: 0 };
        this.docs.set(key, doc);
      }
      if (!doc) return notFound(fw ? 'Microsoft.Network/azureFirewalls' : 'Microsoft.Network/firewallPolicies/ruleCollectionGroups');
      const json = () => ({ id: doc!.id, name: doc!.name, ...(fw ? { location: doc!.location, type: 'Microsoft.Network/azureFirewalls' } : { type: 'Microsoft.Network/FirewallPolicies/RuleCollectionGroups' }), etag: doc!.etag, properties: { ...doc!.properties, provisioningState: doc!.busyUntil > Date.now() ? 'Updating' : 'Succeeded' } });
      if (method === 'GET') return send(200, json(), { etag: doc.etag });
      if (method === 'PUT') {
        if (!this.admit(doc, headers, send)) return;
        const props = (body.properties ?? {}) as Record<string, unknown>;
        // DNAT destinations must be unique per public address and port.
        const tmp = { ...doc, properties: props };
        this.docs.set(key, tmp);
        const seen = new Set<string>();
        for (const r of this.natRules(path)) {
          for (const a of (r.destinationAddresses as string[] | undefined) ?? []) for (const p of (r.destinationPorts as string[] | undefined) ?? []) {
            if (seen.has(`${a}:${p}`)) {
              this.docs.set(key, doc);
              return send(400, { error: { code: 'AzureFirewallNatRuleDuplicate', message: `More than one DNAT rule for ${a}:${p}` } });
            }
            seen.add(`${a}:${p}`);
          }
        }
        this.docs.set(key, doc);
        doc.properties = props;
        return this.commit(doc, path, () => json(), send);
      }
    }
    send(404, { error: { code: 'InvalidResourceType', message: `no emulated route for ${method} ${path}` } });
  }

  /** ARM's gatekeeping for a write: faults, throttling, one operation at a time, If-Match. */
  private admit(res: { etag: string; busyUntil: number }, headers: Record<string, string | string[] | undefined>, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): boolean {
    this.stats.puts++;
    const fault = this.faults.shift();
    this.answer = undefined;
    if (fault) {
      this.stats.faults++;
      if ('status' in fault) {
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
    if (res.busyUntil > Date.now()) {
      this.stats.conflicts409++;
      send(409, { error: { code: 'AnotherOperationInProgress', message: 'Another operation on this or dependent resource is in progress. To retry later, please wait for the operation to complete.' } });
      return false;
    }
    const ifMatch = headers['if-match'];
    if (ifMatch && ifMatch !== '*' && ifMatch !== res.etag) {
      this.stats.preconditionFailed412++;
      send(412, { error: { code: 'PreconditionFailed', message: 'The condition specified using HTTP conditional header(s) is not met.' } });
      return false;
    }
    return true;
  }

  /** Stores a write: new ETag, busy for the latency, 200 + Azure-AsyncOperation. */
  private commit(res: { id: string; etag: string; busyUntil: number; location?: string }, id: string, json: () => unknown, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    res.etag = `W/"${randomUUID()}"`;
    res.busyUntil = Date.now() + (this.opts.latencyMs ?? 0);
    const opId = randomUUID();
    this.ops.set(opId, res.busyUntil);
    this.writes.push({ at: Date.now(), nsg: id, rules: 0 });
    const sub = id.split('/')[2];
    const answer = this.answer;
    this.answer = undefined;
    if (answer && 'hang' in answer) return; // applied, but the answer is lost
    const reply = (status: number, payload: unknown, headers: Record<string, string>) =>
      answer && 'slowMs' in answer ? void setTimeout(() => send(status, payload, headers), answer.slowMs) : send(status, payload, headers);
    reply(200, json(), {
      'azure-asyncoperation': `${this.url}/subscriptions/${sub}/providers/Microsoft.Network/locations/westeurope/operations/${opId}?api-version=2024-05-01`,
      etag: res.etag,
    });
  }

  private nsgJson(nsg: Nsg) {
    return {
      id: nsg.id, name: nsg.name, type: 'Microsoft.Network/networkSecurityGroups', location: nsg.location, etag: nsg.etag,
      properties: {
        provisioningState: nsg.busyUntil > Date.now() ? 'Updating' : 'Succeeded',
        securityRules: nsg.rules.map((r) => ({ id: `${nsg.id}/securityRules/${r.name}`, name: r.name, etag: nsg.etag, type: 'Microsoft.Network/networkSecurityGroups/securityRules', properties: { ...r.properties, provisioningState: 'Succeeded' } })),
        defaultSecurityRules: [],
      },
    };
  }

  private putNsg(nsg: Nsg, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown>, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    if (!this.admit(nsg, headers, send)) return;
    const props = (body.properties ?? {}) as { securityRules?: ArmRule[] };
    const rules = (props.securityRules ?? []).map((r) => ({ name: r.name, properties: { ...r.properties } }));
    const seen = new Map<string, string>();
    for (const r of rules) {
      const p = r.properties;
      if (!Number.isInteger(p.priority) || p.priority < 100 || p.priority > 4096) {
        return send(400, { error: { code: 'SecurityRuleInvalidPriority', message: `Security rule ${r.name} has invalid priority ${p.priority}. Value provided: ${p.priority} Allowed range 100-4096.` } });
      }
      const k = `${p.direction}:${p.priority}`;
      const other = seen.get(k);
      if (other) {
        this.stats.ruleConflicts400++;
        return send(400, { error: { code: 'SecurityRuleConflict', message: `Security rule ${r.name} conflicts with rule ${other}. Rules cannot have the same Priority and Direction.` } });
      }
      seen.set(k, r.name);
    }
    nsg.rules = rules;
    this.commit(nsg, nsg.id, () => this.nsgJson(nsg), send);
    this.writes[this.writes.length - 1]!.rules = rules.length;
  }
}
