// Defender for Cloud's JIT VM access, emulated as a plugin of the ARM emulator (test/fakes/arm.ts):
// the Security resource provider's jitNetworkAccessPolicies at api-version 2020-01-01, answered in
// the wire format of azure-rest-api-specs
// specification/security/resource-manager/Microsoft.Security/stable/2020-01-01/jitNetworkAccessPolicies.json
// and its examples (GetJitNetworkAccessPolicy_example.json, InitiateJitNetworkAccessPolicy_example.json).
//
// What is documented (and modelled as documented):
// - GET a policy, list per subscription / resource group / location (paged with nextLink);
// - POST .../{name}/initiate with virtualMachines[].ports[] {number, allowedSourceAddressPrefix,
//   endTimeUtc} and justification, answered 202 with the request (ports `Initiating`);
// - a policy's `requests`: ports with `status` Initiated / Revoked and `statusReason` Expired /
//   UserRequested / NewerRequestInitiated;
// - RBAC: Microsoft.Security/locations/jitNetworkAccessPolicies/read and .../initiate/action (the
//   only read action of the type: a list at subscription scope needs it too).
// What was observed by others and is modelled so (azure-rest-api-specs issues #43491, #32158;
// MicrosoftDocs/azure-docs issue #53026; a user report of the "not a subset" message):
// - 404 PolicyNotFound for an unknown policy; 400 InvalidInitiateInput "Only one of fields
//   'EndTimeUtc' and 'Duration' can be set." when neither or both are given; `duration` and
//   `allowedSourceAddressPrefixes` accepted in an initiate (the portal sends them);
// - a source must equal one of the policy's prefixes as written (a host inside an allowed range is
//   refused); a request outside the policy answers "The given access request is not a subset of
//   policy '<id>'. Please make sure that the access request is within the allowed policy
//   properties." (its error code is not documented: `BadRequest` here is the emulator's choice).
// What nobody documents, so it is a knob here: whether an end time in the past or now is accepted
// (`minEndMs`), and how long Defender takes to apply a request (`latencyMs`). Defender's own NSG
// rules are written as seen in exported NSGs (`SecurityCenter-JITRule-<n>-<hex>`, the description
// naming policy and VM); a newer request for the same VM port supersedes the older one
// (`NewerRequestInitiated`), one request per VM port.
import { randomUUID } from 'node:crypto';
import type { ArmEmulator, ArmPlugin, ArmRule, Send } from './arm.js';

export interface JitPortRule {
  number: number;
  protocol: 'TCP' | 'UDP' | '*';
  allowedSourceAddressPrefix?: string;
  allowedSourceAddressPrefixes?: string[];
  maxRequestAccessDuration: string;
}

interface RequestPort {
  number: number;
  allowedSourceAddressPrefix?: string;
  allowedSourceAddressPrefixes?: string[];
  endTimeUtc: string;
  status: string;
  statusReason: string;
}
interface JitRequest {
  virtualMachines: Array<{ id: string; ports: RequestPort[] }>;
  startTimeUtc: string;
  requestor: string;
  justification?: string;
}
interface Policy {
  id: string;
  name: string;
  location: string;
  sub: string;
  rg: string;
  virtualMachines: Array<{ id: string; ports: JitPortRule[]; publicIpAddress?: string }>;
  requests: JitRequest[];
}

export interface DefenderEmulatorOptions {
  /** How long Defender takes to apply an initiate: its rule appears and the request shows `Initiated`. */
  latencyMs?: number;
  /**
   * Initiates ending earlier than now + minEndMs are refused (400). Undefined: any end time is
   * accepted, and one already past ends the request as soon as it is applied.
   */
  minEndMs?: number;
  /** Items per page of a list (default 50). */
  pageSize?: number;
  /** Who Defender records as the requestor (the bot's identity). */
  requestor?: string;
}

type Fault = { status: number; code: string; headers?: Record<string, string> } | { hang: 'before' };

const lower = (s: string) => s.toLowerCase();
const POLICY_RE = /^(\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.security\/locations\/([^/]+)\/jitnetworkaccesspolicies\/([^/]+))(\/initiate)?$/;
const LIST_RE = /^\/subscriptions\/([^/]+)(?:\/resourcegroups\/([^/]+))?\/providers\/microsoft\.security(?:\/locations\/([^/]+))?\/jitnetworkaccesspolicies$/;

/** ISO-8601 durations as Defender writes them (PT3H, PT30M, P1D, PT1H30M). */
function isoMs(d: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/i.exec(d);
  if (!m) return NaN;
  return ((Number(m[1] ?? 0) * 24 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 60_000 + Number(m[4] ?? 0) * 1000;
}

export class DefenderEmulator implements ArmPlugin {
  readonly stats = { initiates: 0, refused: 0, reads: 0 };
  /** Every accepted initiate: its x-ms-request-id, the body as sent and when. */
  readonly initiated: Array<{ at: number; requestId: string; policy: string; body: Record<string, unknown> }> = [];
  private policies = new Map<string, Policy>();
  private faults: Fault[] = [];
  /** Defender's Allow rules per request port (to remove when the port ends). */
  private rulesOf = new Map<RequestPort, Array<{ nsg: string; name: string }>>();
  private timers = new Set<NodeJS.Timeout>();
  /** See DefenderEmulatorOptions.minEndMs; tests change it. */
  minEndMs: number | undefined;

  constructor(
    private readonly arm: ArmEmulator,
    private readonly opts: DefenderEmulatorOptions = {},
  ) {
    this.minEndMs = opts.minEndMs;
    arm.use(this);
  }

  /** A JIT policy (`default` per resource group, as the portal creates them) over these VMs. */
  addPolicy(rgScope: string, vms: Policy['virtualMachines'], opts: { name?: string; location?: string } = {}): string {
    const name = opts.name ?? 'default';
    const location = opts.location ?? 'westeurope';
    const [, , sub, , rg] = rgScope.split('/');
    const id = `${rgScope}/providers/Microsoft.Security/locations/${location}/jitNetworkAccessPolicies/${name}`;
    this.policies.set(lower(id), { id, name, location, sub: sub!, rg: rg!, virtualMachines: vms, requests: [] });
    return id;
  }

  /** Changes a VM's ports in its policy (someone edits JIT in Defender for Cloud). */
  setPorts(policyId: string, vmId: string, ports: JitPortRule[]): void {
    const vm = this.policies.get(lower(policyId))!.virtualMachines.find((v) => lower(v.id) === lower(vmId))!;
    vm.ports = ports;
  }

  /** The policy as GET answers it. */
  policy(id: string): Record<string, unknown> {
    return this.json(this.policies.get(lower(id))!);
  }

  /** A request made in Defender directly (the portal), not through the bot. */
  initiateAsPortal(policyId: string, vmId: string, port: number, source: string, endMs: number, requestor = 'someone@contoso.com'): void {
    const p = this.policies.get(lower(policyId))!;
    this.accept(p, [{ id: vmId, ports: [{ number: port, allowedSourceAddressPrefix: source, endTimeUtc: new Date(endMs).toISOString() }] }], requestor, 'portal request');
  }

  /** Defender's Allow rules for this VM on its NSGs. */
  openRules(vmId: string): ArmRule[] {
    const path = this.arm.vmPath(vmId);
    if (!path) return [];
    return path.nsgs.flatMap((nsg) => this.arm.rules(nsg).filter((r) => r.name.startsWith('SecurityCenter-JITRule-') && r.properties.description?.includes(`VM '${path.name}'`)));
  }

  /** The next initiates fail with these answers, in order. */
  failNextInitiate(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ------------------------------------------------------------------ ARM plugin

  actionOf(method: string, path: string): string | undefined {
    const key = lower(path);
    if (!key.includes('/providers/microsoft.security/') || !key.includes('jitnetworkaccesspolicies')) return undefined;
    if (method === 'POST' && key.endsWith('/initiate')) return 'microsoft.security/locations/jitnetworkaccesspolicies/initiate/action';
    const verb = method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write';
    return `microsoft.security/locations/jitnetworkaccesspolicies/${verb}`;
  }

  handle(call: Parameters<ArmPlugin['handle']>[0], send: Send): boolean {
    const { method, path, key, query, body } = call;
    const list = LIST_RE.exec(key);
    if (list && method === 'GET') {
      this.stats.reads++;
      const [, sub, rg, loc] = list;
      const items = [...this.policies.values()].filter((p) => lower(p.sub) === sub && (!rg || lower(p.rg) === rg) && (!loc || lower(p.location) === loc));
      const size = this.opts.pageSize ?? 50;
      const skip = Number(query.get('$skiptoken') ?? 0);
      const next = skip + size < items.length ? `${this.arm.url}${path}?api-version=${query.get('api-version')}&$skiptoken=${skip + size}` : undefined;
      send(200, { value: items.slice(skip, skip + size).map((p) => this.json(p)), ...(next ? { nextLink: next } : {}) });
      return true;
    }
    const one = POLICY_RE.exec(key);
    if (!one) return false;
    const policy = this.policies.get(one[1]!);
    if (!policy) {
      send(404, { error: { code: 'PolicyNotFound', message: `Policy '${path.replace(/\/initiate$/i, '')}' was not found.` } });
      return true;
    }
    if (!one[6]) {
      if (method !== 'GET') send(405, { error: { code: 'MethodNotAllowed', message: `${method} is not emulated` } });
      else {
        this.stats.reads++;
        send(200, this.json(policy));
      }
      return true;
    }
    if (method !== 'POST') {
      send(405, { error: { code: 'MethodNotAllowed', message: `${method} ${path}` } });
      return true;
    }
    this.initiate(policy, body, send);
    return true;
  }

  // ------------------------------------------------------------------ initiate

  private initiate(policy: Policy, body: Record<string, unknown>, send: Send): void {
    const fault = this.faults.shift();
    if (fault) {
      if ('hang' in fault) return;
      send(fault.status, { error: { code: fault.code, message: `injected ${fault.code}` } }, fault.headers ?? {});
      return;
    }
    const refuse = (code: string, message: string) => {
      this.stats.refused++;
      send(400, { error: { code, message } });
    };
    const notSubset = () => refuse('BadRequest', `The given access request is not a subset of policy '${policy.id}'. Please make sure that the access request is within the allowed policy properties.`);
    const vms = body.virtualMachines as Array<{ id?: string; ports?: Array<Record<string, unknown>> }> | undefined;
    if (!Array.isArray(vms) || vms.length === 0) return refuse('InvalidInitiateInput', 'The request must name at least one virtual machine.');
    const now = Date.now();
    const accepted: Array<{ id: string; ports: Array<Omit<RequestPort, 'status' | 'statusReason'>> }> = [];
    for (const v of vms) {
      const rule = policy.virtualMachines.find((p) => typeof v.id === 'string' && lower(p.id) === lower(v.id));
      if (!rule || !Array.isArray(v.ports) || v.ports.length === 0) return notSubset();
      const ports: Array<Omit<RequestPort, 'status' | 'statusReason'>> = [];
      for (const p of v.ports) {
        const hasEnd = typeof p.endTimeUtc === 'string';
        const hasDuration = typeof p.duration === 'string';
        if (hasEnd === hasDuration) return refuse('InvalidInitiateInput', "Only one of fields 'EndTimeUtc' and 'Duration' can be set.");
        const end = hasEnd ? Date.parse(p.endTimeUtc as string) : now + isoMs(p.duration as string);
        if (Number.isNaN(end)) return refuse('InvalidInitiateInput', `'${String(p.endTimeUtc ?? p.duration)}' is not a valid end time or duration.`);
        const allowed = rule.ports.find((r) => r.number === p.number);
        if (!allowed) return notSubset();
        if (end - now > isoMs(allowed.maxRequestAccessDuration)) return notSubset();
        if (this.minEndMs !== undefined && end < now + this.minEndMs) return refuse('BadRequest', `The end time '${new Date(end).toISOString()}' must be at least ${Math.round(this.minEndMs / 1000)} seconds in the future.`);
        // No source: "the source IP address of the initiate request" (here, the emulator's client).
        const sources = Array.isArray(p.allowedSourceAddressPrefixes) ? (p.allowedSourceAddressPrefixes as string[]) : [typeof p.allowedSourceAddressPrefix === 'string' ? p.allowedSourceAddressPrefix : '127.0.0.1'];
        const policySources = allowed.allowedSourceAddressPrefixes ?? [allowed.allowedSourceAddressPrefix ?? '*'];
        if (!policySources.includes('*') && !sources.every((s) => policySources.includes(s))) return notSubset();
        ports.push({
          number: Number(p.number),
          ...(sources.length === 1 ? { allowedSourceAddressPrefix: sources[0]! } : { allowedSourceAddressPrefixes: sources }),
          endTimeUtc: hasEnd ? (p.endTimeUtc as string) : new Date(end).toISOString(),
        });
      }
      accepted.push({ id: rule.id, ports });
    }
    this.stats.initiates++;
    const request = this.accept(policy, accepted, this.opts.requestor ?? 'jit-bot-identity', typeof body.justification === 'string' ? body.justification : undefined);
    const requestId = randomUUID();
    this.initiated.push({ at: now, requestId, policy: policy.id, body });
    send(202, request, { 'x-ms-request-id': requestId, 'x-ms-correlation-request-id': randomUUID() });
  }

  /** Records the request (ports `Initiating`), applies it after `latencyMs`; returns the answer's body. */
  private accept(policy: Policy, vms: Array<{ id: string; ports: Array<Omit<RequestPort, 'status' | 'statusReason'>> }>, requestor: string, justification?: string): JitRequest {
    const request: JitRequest = {
      virtualMachines: vms.map((v) => ({ id: v.id, ports: v.ports.map((p) => ({ ...p, status: 'Initiating', statusReason: 'UserRequested' })) })),
      startTimeUtc: new Date().toISOString(),
      requestor,
      ...(justification !== undefined ? { justification } : {}),
    };
    policy.requests.push(request);
    const answer = JSON.parse(JSON.stringify(request)) as JitRequest;
    this.later(this.opts.latencyMs ?? 0, () => this.apply(policy, request));
    return answer;
  }

  private apply(policy: Policy, request: JitRequest): void {
    for (const vm of request.virtualMachines) {
      for (const port of vm.ports) {
        if (port.status !== 'Initiating') continue;
        // One request per VM port: the newer one supersedes whatever the port had.
        for (const older of policy.requests) {
          if (older === request) continue;
          for (const ov of older.virtualMachines) {
            if (lower(ov.id) !== lower(vm.id)) continue;
            for (const op of ov.ports) if (op.number === port.number && /^initiat/i.test(op.status)) this.end(op, 'NewerRequestInitiated');
          }
        }
        port.status = 'Initiated';
        this.writeRules(policy, vm.id, port);
        const end = Date.parse(port.endTimeUtc);
        this.later(Math.max(0, end - Date.now()), () => {
          if (port.status === 'Initiated') this.end(port, 'Expired');
        });
      }
    }
  }

  private end(port: RequestPort, reason: string): void {
    port.status = 'Revoked';
    port.statusReason = reason;
    for (const r of this.rulesOf.get(port) ?? []) this.arm.removeRule(r.nsg, r.name);
    this.rulesOf.delete(port);
  }

  /** Defender's Allow rule on each NSG of the VM's path, from the request's source to the VM. */
  private writeRules(policy: Policy, vmId: string, port: RequestPort): void {
    const path = this.arm.vmPath(vmId);
    if (!path) return;
    const protocol = policy.virtualMachines.find((v) => lower(v.id) === lower(vmId))?.ports.find((r) => r.number === port.number)?.protocol ?? '*';
    const written: Array<{ nsg: string; name: string }> = [];
    for (const nsg of path.nsgs) {
      const used = new Set(this.arm.rules(nsg).filter((r) => r.properties.direction === 'Inbound').map((r) => r.properties.priority));
      let priority = 100;
      while (used.has(priority)) priority++;
      const name = `SecurityCenter-JITRule-${Math.floor(Math.random() * 2 ** 31)}-${randomUUID().replace(/-/g, '').toUpperCase()}`;
      this.arm.addForeignRule(nsg, {
        name,
        properties: {
          priority, direction: 'Inbound', access: 'Allow', protocol: protocol === '*' ? '*' : protocol === 'TCP' ? 'Tcp' : 'Udp',
          ...(port.allowedSourceAddressPrefixes ? { sourceAddressPrefixes: port.allowedSourceAddressPrefixes } : { sourceAddressPrefix: port.allowedSourceAddressPrefix ?? '*' }),
          sourcePortRange: '*', destinationAddressPrefix: path.ips[0]!, destinationPortRange: String(port.number),
          description: `ASC JIT Network Access rule created by an initiation request for policy '${policy.name}' of VM '${path.name}'.`,
        },
      });
      written.push({ nsg, name });
    }
    this.rulesOf.set(port, written);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private json(p: Policy): Record<string, unknown> {
    return {
      id: p.id,
      name: p.name,
      type: 'Microsoft.Security/locations/jitNetworkAccessPolicies',
      location: p.location,
      kind: 'Basic',
      properties: { virtualMachines: p.virtualMachines, requests: p.requests, provisioningState: 'Succeeded' },
    };
  }
}
