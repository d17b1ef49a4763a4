// The Defender for Cloud NetworkGate (JIT_NETWORK=defender): a grant is Defender for Cloud's own
// just-in-time VM access request, made through the Security resource provider
// (Microsoft.Security/locations/{ascLocation}/jitNetworkAccessPolicies, api-version 2020-01-01);
// Defender writes and removes the NSG / firewall rules itself. The bot adds what Defender lacks:
// who may request, who approves, the chat front end. Wire format: azure-rest-api-specs
// specification/security/resource-manager/Microsoft.Security/stable/2020-01-01/jitNetworkAccessPolicies.json
// and its examples (see the README, "Defender for Cloud's JIT", for what is verified and what not).
// Through the ARM client the NSG gate uses (retries, Retry-After, read concurrency cap, answer
// counts for /metrics), not @azure/arm-security: its latest release (5.0.0) adds a dependency tree
// and a retry policy of its own that would fight these loops, for three calls.
//
// - Targets and their ports come from Defender's JIT policies, listed per subscription: each VM of a
//   policy is a target, each of its ports a port rule (number, protocol, allowed sources,
//   `maxRequestAccessDuration`), so a request outside Defender's policy is refused before anyone is
//   asked to approve it, with Defender's own limits named.
// - open = POST .../jitNetworkAccessPolicies/{name}/initiate with the VM, its ports, the source and
//   `endTimeUtc`; Defender answers 202 with the request (status `Initiating`), and the grant counts
//   as open once the policy's `requests` show its ports `Initiated`.
// - Each initiate carries `justification: "jit-bot request=<id> for <requester>: <text>"`: the tag
//   finds the bot's requests in a policy's `requests` again (the API gives a request no id).
// - extend = initiate again with the later end time (Defender marks the older request's ports
//   `Revoked` / `NewerRequestInitiated`).
// - The API has no revoke. close = initiate again with `endTimeUtc` = now; if Defender refuses that
//   end time, with now + 1 minute; if it refuses that too, and the NSG fallback is configured, the
//   bot deletes Defender's own Allow rule from the VM's NSGs; otherwise the close fails with
//   Defender's answer and the port stays open until Defender's end time (the revocation job and the
//   reconciler try again).
// - The reconciler reads the policies' `requests`: a tagged request still open whose grant is not
//   active is ended early as above; one whose end differs from the grant's is asked again.
import type { GrantSpec, NetworkGate } from '../../app/ports.js';
import { JitError } from '../../core/errors.js';
import { portLabel } from '../../core/format.js';
import type { NetworkPolicies } from '../../core/policy.js';
import { ANY } from '../../core/source.js';
import type { AppliedRule, NetworkTarget, PortSpec, Target } from '../../core/types.js';
import { ArmError, COMPUTE_API, SECURITY_API, classify, type ArmClient, type ArmDoc, type ArmStats } from './arm.js';
import { connectArm } from './arm-connect.js';
import type { DefenderGateOptions } from './defender-options.js';
import { END_SLACK_MS, currentPorts, endsEarly, hhmm, hostForm, importPolicies, isDefenderAllow, isLive, isOpenAt, iso, justificationOf, normalized, portRuleOf, protocolOf, rawSources, requestedVms, sameId, tagOf, type InitiateWire, type JitPolicyVmWire, type JitPolicyWire, type JitRequestPortWire, type JitRequestWire } from './defender-wire.js';

export type { DefenderGateOptions } from './defender-options.js';
export { currentPorts, endsEarly, importPolicies, isDefenderAllow, isLive, justificationOf, portRuleOf, protocolOf, rawSources, tagOf, type CurrentPort, type InitiateWire, type JitPolicyVmWire, type JitPolicyWire, type JitPortRuleWire, type JitRequestPortWire, type JitRequestWire } from './defender-wire.js';

interface Entry {
  doc: JitPolicyWire;
  vm: JitPolicyVmWire | undefined;
}

export class DefenderGate implements NetworkGate {
  private readonly arm: ArmClient;
  private index: { at: number; docs: JitPolicyWire[] } | undefined;
  /**
   * Requests whose Defender rule the NSG fallback deleted, until Defender's own end time: Defender
   * still shows them Initiated, and asking it again (ending now) could make it write the rule anew.
   * In memory: after a restart the reconciler may ask Defender once more.
   */
  private removedByFallback = new Map<string, number>();
  private readonly deadlineMs: number;
  private readonly pollMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;

  constructor(private readonly opts: DefenderGateOptions) {
    this.deadlineMs = opts.writeDeadlineMs ?? 60_000;
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.log = opts.log ?? (() => {});
    this.arm = connectArm(opts, this.pollMs, this.sleep, this.log);
  }

  get stats(): ArmStats {
    return this.arm.stats;
  }

  armAnswers(): ReturnType<ArmClient['armAnswers']> {
    return this.arm.armAnswers();
  }

  // ------------------------------------------------------------------ reading Defender's policies

  /** Every JIT policy of the subscriptions (one paged list per subscription), reused for `maxAgeMs`. */
  private async listPolicies(maxAgeMs = 0): Promise<JitPolicyWire[]> {
    if (this.index && Date.now() - this.index.at <= maxAgeMs) return this.index.docs;
    const lists = await Promise.all(this.opts.subscriptions.map((sub) => this.arm.list(`/subscriptions/${sub}/providers/Microsoft.Security/jitNetworkAccessPolicies`, SECURITY_API)));
    const docs = lists.flat().filter((d): d is ArmDoc & JitPolicyWire => typeof d.id === 'string' && typeof d.name === 'string' && typeof d.properties === 'object');
    this.index = { at: Date.now(), docs };
    return docs;
  }

  /** One policy as it is now (its `requests` change with every initiate). */
  private async readPolicy(id: string): Promise<JitPolicyWire | null> {
    const got = await this.arm.getOrNull(id, SECURITY_API);
    return got ? (got.doc as unknown as JitPolicyWire) : null;
  }

  /**
   * The policy that holds the VM, read fresh. `scopes` (policy ids the grant's rules were written
   * under) are tried first: closing must not depend on the VM still being in a policy.
   */
  private async entryOf(vmId: string, scopes: string[] = []): Promise<Entry | null> {
    for (const scope of new Set(scopes)) {
      const doc = await this.readPolicy(scope);
      if (doc) return { doc, vm: doc.properties.virtualMachines?.find((v) => sameId(v.id, vmId)) };
    }
    for (const maxAge of [60_000, 0]) {
      const holder = (await this.listPolicies(maxAge)).find((d) => (d.properties.virtualMachines ?? []).some((v) => sameId(v.id, vmId)));
      if (!holder) continue;
      const doc = await this.readPolicy(holder.id);
      if (doc) return { doc, vm: doc.properties.virtualMachines?.find((v) => sameId(v.id, vmId)) };
    }
    return null;
  }

  async policies(): Promise<NetworkPolicies> {
    const { policies, problems } = importPolicies(await this.listPolicies(0));
    // Said once per change, not on every tick.
    const said = problems.join('\n');
    if (said !== this.problemsSaid) for (const p of problems) this.log('defender: policy not imported as it is', { problem: p });
    this.problemsSaid = said;
    return policies;
  }
  private problemsSaid = '';

  // ------------------------------------------------------------------ NetworkGate

  async open(grant: GrantSpec): Promise<AppliedRule[]> {
    const { target } = grant;
    const entry = await this.entryOf(target.id);
    if (!entry?.vm) throw new Error(`${target.name} has no Defender for Cloud JIT policy; enable just-in-time access on it in Defender for Cloud`);
    const { doc, vm } = entry;
    const now = Date.now();
    const ports = grant.ports.map((want) => {
      const rule = vm.ports.find((r) => r.number === want.port && (protocolOf(r.protocol) === '*' || protocolOf(r.protocol) === want.protocol));
      if (!rule) {
        throw new Error(`Defender for Cloud's JIT policy ${doc.name} has no ${portLabel(want)} for ${target.name} (it allows ${vm.ports.map((r) => portLabel({ port: r.number, protocol: protocolOf(r.protocol) })).join(', ') || 'none'})`);
      }
      const max = portRuleOf(rule);
      if (typeof max === 'string') throw new Error(`Defender for Cloud's JIT policy ${doc.name}: ${max}`);
      if (grant.expiresAt - now > max.maxDurationMs + END_SLACK_MS) {
        throw new Error(`Defender for Cloud allows at most ${rule.maxRequestAccessDuration} on ${target.name} port ${rule.number} (maxRequestAccessDuration)`);
      }
      const allowed = rawSources(rule);
      const verbatim = allowed.find((raw) => normalized(raw) === grant.sourcePrefix);
      const any = allowed.some((raw) => normalized(raw) === ANY);
      if (!verbatim && !any) {
        throw new Error(`Defender for Cloud allows only ${allowed.join(', ')} on ${target.name} port ${rule.number}, not ${grant.sourcePrefix}`);
      }
      return { number: rule.number, source: verbatim ?? (grant.sourcePrefix === ANY ? '*' : hostForm(grant.sourcePrefix)) };
    });
    // Defender keeps one request per VM port: asking for a port another request holds ends it.
    const current = currentPorts(doc, vm.id);
    for (const p of ports) {
      const c = current.get(p.number);
      if (c && isOpenAt(c.port, now) && tagOf(c.request) !== grant.requestId) {
        const other = tagOf(c.request);
        throw new Error(
          `${target.name} port ${p.number} is open in Defender for Cloud until ${hhmm(Date.parse(c.port.endTimeUtc))} for ${other ? `jit-bot request ${other}` : `a request made in Defender by ${c.request.requestor ?? 'someone'}`}; asking Defender again would end it (Defender keeps one request per VM port). Try again after that`,
        );
      }
    }
    const answer = await this.initiate(doc, vm.id, ports, grant.expiresAt, justificationOf(grant.requestId, grant.requester, grant.justification));
    await this.confirm(doc.id, vm.id, grant.requestId, ports.map((p) => p.number), grant.expiresAt, target.name);
    return this.rulesOf(grant.requestId, doc, vm, target.id, ports, grant.expiresAt, answer);
  }

  async close(requestId: string, target: NetworkTarget, written: AppliedRule[] = []): Promise<AppliedRule[]> {
    const entry = await this.entryOf(target.id, written.map((r) => r.scope));
    if (!entry) return [];
    const now = Date.now();
    const open = [...currentPorts(entry.doc, target.id)].filter(([, c]) => tagOf(c.request) === requestId && isOpenAt(c.port, now) && !endsEarly(c.request));
    if (open.length === 0) return [];
    return this.endEarly(requestId, target, entry, open.map(([number, c]) => ({ number, source: rawSources(c.port)[0]!, endTimeUtc: c.port.endTimeUtc })));
  }

  async updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<AppliedRule[]> {
    const entry = await this.entryOf(target.id);
    if (!entry) throw new Error(`${target.name} is in no Defender for Cloud JIT policy any more; its grant ${requestId} cannot be extended there`);
    const now = Date.now();
    const open = [...currentPorts(entry.doc, target.id)].filter(([, c]) => tagOf(c.request) === requestId && isOpenAt(c.port, now));
    if (open.length === 0) throw new Error(`Defender for Cloud shows no open request of ${requestId} on ${target.name}; nothing to extend`);
    if (open.every(([, c]) => Math.abs(Date.parse(c.port.endTimeUtc) - expiresAt) < 1000)) return [];
    const ports = open.map(([number, c]) => ({ number, source: rawSources(c.port)[0]! }));
    const original = open[0]![1].request.justification;
    const answer = await this.initiate(entry.doc, target.id, ports, expiresAt, original && tagOf({ justification: original }) === requestId ? original : justificationOf(requestId));
    await this.confirm(entry.doc.id, target.id, requestId, ports.map((p) => p.number), expiresAt, target.name);
    return this.rulesOf(requestId, entry.doc, entry.vm, target.id, ports, expiresAt, answer);
  }

  /** Every request of the bot's that Defender shows open, as rules (the reconciler's view). */
  async list(): Promise<AppliedRule[]> {
    const now = Date.now();
    const out: AppliedRule[] = [];
    for (const doc of await this.listPolicies(0)) {
      for (const vmId of requestedVms(doc)) {
        for (const [number, c] of currentPorts(doc, vmId)) {
          const requestId = tagOf(c.request);
          if (!requestId || !isOpenAt(c.port, now) || endsEarly(c.request)) continue;
          if ((this.removedByFallback.get(requestId) ?? 0) > now) continue;
          out.push(this.rule(requestId, doc, vmId, number, rawSources(c.port)[0]!, Date.parse(c.port.endTimeUtc), `listed from the policy's requests (start ${c.request.startTimeUtc})`));
        }
      }
    }
    return out;
  }

  async remove(rules: AppliedRule[]): Promise<AppliedRule[]> {
    const byRequest = new Map<string, AppliedRule[]>();
    for (const r of rules) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r]);
    const results = await Promise.allSettled(
      [...byRequest].map(async ([requestId, owned]) => {
        const vmId = vmOfRule(owned[0]!);
        if (!vmId) return [];
        return this.close(requestId, { name: vmId.split('/').pop()!, id: vmId, os: 'linux' }, owned);
      }),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const f of failed) this.log('defender: reconciler could not end a request; the next sweep retries', { err: f.reason instanceof Error ? f.reason.message : String(f.reason) });
    if (failed.length === results.length && failed.length > 0) throw failed[0]!.reason;
    return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  /**
   * "Enable JIT" is Defender's: the bot's role cannot write Defender's policies. A VM with a JIT
   * policy covering the ports is reported as denied already (Defender wrote its Deny rules).
   */
  async enforce(target: Target, ports: PortSpec[]): Promise<AppliedRule[]> {
    const entry = await this.entryOf(target.id);
    if (!entry?.vm) throw new JitError('network', `${target.name} has no Defender for Cloud JIT policy; enable just-in-time access on it in Defender for Cloud (the bot does not write Defender's policies)`);
    const vm = entry.vm;
    const missing = ports.filter((p) => !vm.ports.some((r) => r.number === p.port));
    if (missing.length) throw new JitError('network', `Defender for Cloud's JIT policy for ${target.name} does not cover ${missing.map(portLabel).join(', ')}; add the port in Defender for Cloud`);
    return [];
  }

  async unenforce(): Promise<AppliedRule[]> {
    return [];
  }

  /** Every VM of the subscriptions (VMs without a JIT policy are "not configured"). */
  async inventory(): Promise<Array<{ id: string; name: string; reason?: string }>> {
    const out: Array<{ id: string; name: string }> = [];
    try {
      for (const sub of this.opts.subscriptions) {
        for (const vm of await this.arm.list(`/subscriptions/${sub}/providers/Microsoft.Compute/virtualMachines`, COMPUTE_API)) {
          if (typeof vm.id === 'string' && typeof vm.name === 'string') out.push({ id: vm.id, name: vm.name });
        }
      }
      return out;
    } catch (err) {
      if (!(err instanceof ArmError && err.status === 403)) throw err;
      // Without VM read: the policies' VMs only.
      this.log('defender: cannot list VMs (no Microsoft.Compute/virtualMachines/read); showing the JIT policies\' VMs only');
      return (await this.listPolicies(60_000)).flatMap((d) => (d.properties.virtualMachines ?? []).map((v) => ({ id: v.id, name: v.id.split('/').pop()! })));
    }
  }

  // ------------------------------------------------------------------ calls

  /** POST initiate; Defender's refusals become errors that quote it. */
  private async initiate(doc: JitPolicyWire, vmId: string, ports: Array<{ number: number; source: string }>, endMs: number, justification: string): Promise<{ requestId?: string; startTimeUtc?: string; status?: string; body: ArmDoc }> {
    const body: InitiateWire = {
      virtualMachines: [{ id: vmId, ports: ports.map((p) => ({ number: p.number, allowedSourceAddressPrefix: p.source, endTimeUtc: iso(endMs) })) }],
      justification,
    };
    let res;
    try {
      res = await this.arm.post(`${doc.id}/initiate`, SECURITY_API, body, this.deadlineMs);
    } catch (err) {
      if (err instanceof ArmError && classify(err) === 'fatal') {
        throw new DefenderRefusal(`Defender for Cloud refused the request (${err.status ?? ''} ${err.code}): ${err.message.replace(/^\S+ \S+: \S+ /, '')}`, err);
      }
      throw err;
    }
    const answerPorts = ((res.doc.virtualMachines as JitRequestWire['virtualMachines'] | undefined) ?? []).flatMap((v) => v.ports ?? []);
    const status = [...new Set(answerPorts.map((p) => p.status).filter(Boolean))].join(',') || undefined;
    const startTimeUtc = typeof res.doc.startTimeUtc === 'string' ? res.doc.startTimeUtc : undefined;
    return { ...(res.requestId ? { requestId: res.requestId } : {}), ...(startTimeUtc ? { startTimeUtc } : {}), ...(status ? { status } : {}), body: res.doc };
  }

  /** Waits until the policy's `requests` show these ports of the bot's request `Initiated` with this end time. */
  private async confirm(policyId: string, vmId: string, requestId: string, numbers: number[], endMs: number, name: string): Promise<void> {
    const deadline = Date.now() + this.deadlineMs;
    for (;;) {
      const doc = await this.readPolicy(policyId);
      if (!doc) throw new Error(`Defender for Cloud's JIT policy ${policyId.split('/').pop()} disappeared while ${name} was being opened`);
      const current = currentPorts(doc, vmId);
      const states = numbers.map((n) => {
        const c = current.get(n);
        const ours = c && tagOf(c.request) === requestId && Math.abs(Date.parse(c.port.endTimeUtc) - endMs) < 1000;
        return ours ? c.port : undefined;
      });
      const ended = states.find((p) => p && !isLive(p));
      if (ended) throw new Error(`Defender for Cloud ended the request on ${name} port ${ended.number} at once (${ended.status ?? '?'}: ${ended.statusReason ?? '?'})`);
      if (states.every((p) => p && /^initiated$/i.test(p.status ?? 'Initiated'))) return;
      if (Date.now() + this.pollMs > deadline) throw new Error(`Defender for Cloud did not show the request on ${name} as Initiated within ${Math.round(this.deadlineMs / 1000)} s`);
      await this.sleep(this.pollMs);
    }
  }

  /**
   * Ends the bot's open request on these ports early: initiate again ending now, or a minute from
   * now if Defender refuses an end that close; else the NSG fallback; else an error quoting Defender.
   */
  private async endEarly(requestId: string, target: NetworkTarget, entry: Entry, ports: Array<{ number: number; source: string; endTimeUtc: string }>): Promise<AppliedRule[]> {
    const { doc } = entry;
    let refusal: DefenderRefusal | undefined;
    const earliest = Math.min(...ports.map((p) => Date.parse(p.endTimeUtc)));
    for (const offset of [0, 60_000]) {
      const end = Date.now() + offset;
      // Never later than the grant already ends: asking again must not keep a port open longer.
      if (end >= earliest - END_SLACK_MS) break;
      try {
        const answer = await this.initiate(doc, target.id, ports, end, justificationOf(requestId, undefined, undefined, offset === 0 ? 'ended early' : 'ended early, +1 min'));
        return ports.map((p) => ({ ...this.rule(requestId, doc, target.id, p.number, p.source, end, refOf(answer, end)), ref: `${refOf(answer, end)}; ends the grant early (was until ${p.endTimeUtc})` }));
      } catch (err) {
        if (!(err instanceof DefenderRefusal) || err.cause.status === 403 || err.cause.status === 404) throw err;
        refusal = err;
        this.log('defender: an early end was refused', { request: requestId, offsetMs: offset, err: err.message });
      }
    }
    const fallback = this.opts.nsgFallback;
    const latest = Math.max(...ports.map((p) => Date.parse(p.endTimeUtc)));
    if (!fallback) {
      // Said to whoever revoked (a JitError is their answer): the request is revoked, the port is not closed yet.
      throw new JitError(
        'network',
        `${refusal!.message}. Defender would not end ${target.name} port ${ports.map((p) => p.number).join(',')} early; it closes at Defender's end time ${iso(latest)} (set JIT_DEFENDER_NSG_FALLBACK=true to delete Defender's rule instead)`,
      );
    }
    const vmName = target.id.split('/').pop()!;
    const deleted = await fallback.removeForeign(target, (r, ips) => isDefenderAllow(r, vmName, ips, ports));
    if (deleted.length === 0) throw new Error(`${refusal!.message}. The NSG fallback found no Defender rule for ${target.name} port ${ports.map((p) => p.number).join(',')} to delete`);
    this.removedByFallback.set(requestId, latest);
    for (const [id, until] of this.removedByFallback) if (until <= Date.now()) this.removedByFallback.delete(id);
    return ports.map((p) => ({
      ...this.rule(requestId, doc, target.id, p.number, p.source, Date.now(), ''),
      ref: `NSG fallback (Defender refused an early end: ${refusal!.cause.code}): deleted ${deleted.filter((d) => d.destinationPort === p.number).map((d) => `${d.scope.split('/').pop()}/${d.name}`).join(', ') || 'none'}`,
    }));
  }

  private rulesOf(requestId: string, doc: JitPolicyWire, vm: JitPolicyVmWire | undefined, vmId: string, ports: Array<{ number: number; source: string }>, endMs: number, answer: Awaited<ReturnType<DefenderGate['initiate']>>): AppliedRule[] {
    const mapped = ((answer.body.virtualMachines as JitRequestWire['virtualMachines'] | undefined) ?? []).flatMap((v) => v.ports ?? []);
    return ports.map((p) => {
      const rule = this.rule(requestId, doc, vmId, p.number, p.source, endMs, refOf(answer, endMs));
      const mappedPort = mapped.find((m) => m.number === p.number)?.mappedPort;
      // Behind an Azure Firewall Defender maps the port (DNAT) on the firewall's public IP.
      return mappedPort && vm?.publicIpAddress ? { ...rule, nat: { publicAddress: vm.publicIpAddress, publicPort: mappedPort, translatedPort: p.number } } : rule;
    });
  }

  private rule(requestId: string, doc: JitPolicyWire, vmId: string, port: number, source: string, endMs: number, ref: string): AppliedRule {
    return {
      name: `jit-${requestId}-${port}`,
      scope: doc.id,
      priority: 0,
      direction: 'Inbound',
      access: 'Allow',
      protocol: protocolOf(doc.properties.virtualMachines?.find((v) => sameId(v.id, vmId))?.ports.find((r) => r.number === port)?.protocol),
      sourcePrefix: source === '*' ? ANY : normalized(source) ?? source,
      destinationPort: port,
      description: `Defender for Cloud JIT request on ${vmId} until ${iso(endMs)}`,
      requestId,
      expiresAt: endMs,
      ...(ref ? { ref } : {}),
    };
  }
}

/** Defender refused an initiate (4xx): its code and message. */
export class DefenderRefusal extends Error {
  constructor(message: string, override readonly cause: ArmError) {
    super(message);
    this.name = 'DefenderRefusal';
  }
}

const refOf = (a: { requestId?: string; startTimeUtc?: string; status?: string }, endMs: number) =>
  `initiate x-ms-request-id=${a.requestId ?? 'none'} startTimeUtc=${a.startTimeUtc ?? '?'} endTimeUtc=${iso(endMs)} status=${a.status ?? '?'}`;

const vmOfRule = (r: AppliedRule): string | undefined => /on (\/subscriptions\/\S+) until/.exec(r.description)?.[1];