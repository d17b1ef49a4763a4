// The Defender gate against the Security API's wire format at https://management.azure.com,
// intercepted with nock: api-version 2020-01-01, the list per subscription followed through
// nextLink, POST .../jitNetworkAccessPolicies/{name}/initiate answered 202 with the request
// (InitiateJitNetworkAccessPolicy_example.json), the policy's `requests` read until the ports show
// Initiated (GetJitNetworkAccessPolicy_example.json), ARM's error shape, 429 with Retry-After.
// No network, no Redis.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DefenderGate, type InitiateWire, type JitPolicyWire, type JitRequestWire } from '../../src/adapters/azure/defender.js';
import type { Target } from '../../src/core/types.js';
import { p, tn } from '../fixtures/ids.js';

const ARM = 'https://management.azure.com';
const SUB = '20ff7fc3-e762-44dd-bd96-b71116dcdc23';
const RG = `/subscriptions/${SUB}/resourceGroups/myRg1`;
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines/vm1`;
const POLICY = `${RG}/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/default`;
const LIST = `/subscriptions/${SUB}/providers/Microsoft.Security/jitNetworkAccessPolicies`;
const target: Target = { name: tn('vm1'), id: VM, os: 'windows' };

const policyDoc = (requests: JitRequestWire[] = []): JitPolicyWire & { type: string } => ({
  kind: 'Basic',
  properties: {
    virtualMachines: [{ id: VM, ports: [{ number: 22, protocol: '*', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT3H' }, { number: 3389, protocol: '*', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT3H' }] }],
    requests,
    provisioningState: 'Succeeded',
  },
  id: POLICY, name: 'default', type: 'Microsoft.Security/locations/jitNetworkAccessPolicies', location: 'westeurope',
});
const request = (justification: string, endTimeUtc: string, status: string, start = new Date().toISOString()): JitRequestWire => ({
  virtualMachines: [{ id: VM, ports: [{ number: 3389, allowedSourceAddressPrefix: '192.127.0.2', endTimeUtc, status, statusReason: 'UserRequested' }] }],
  startTimeUtc: start, requestor: 'barbara@contoso.com', justification,
});

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const waits: number[] = [];
const gate = () =>
  new DefenderGate({
    credential: { getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + 3600_000 }) },
    subscriptions: [SUB],
    pollIntervalMs: 1,
    writeDeadlineMs: 5000,
    sleep: async (ms) => void waits.push(ms),
  });

describe('DefenderGate on the Security API\'s wire format (nock)', () => {
  it('lists the policies per subscription through nextLink at api-version 2020-01-01 and imports their VMs', async () => {
    const other = { ...policyDoc(), id: POLICY.replace('myRg1', 'myRg2'), properties: { ...policyDoc().properties, virtualMachines: [{ id: VM.replace('myRg1', 'myRg2').replace('vm1', 'vm2'), ports: [{ number: 22, protocol: 'TCP', allowedSourceAddressPrefixes: ['192.168.0.0/16'], maxRequestAccessDuration: 'PT1H' }] }] } };
    let auth: string | undefined;
    nock(ARM)
      .get(LIST).query({ 'api-version': '2020-01-01' })
      .reply(function () {
        auth = this.req.headers.authorization as string | undefined;
        return [200, { value: [policyDoc()], nextLink: `${ARM}${LIST}?api-version=2020-01-01&$skiptoken=1` }];
      })
      .get(LIST).query({ 'api-version': '2020-01-01', $skiptoken: '1' })
      .reply(200, { value: [other] });
    const imported = await gate().policies();
    expect(auth).toBe('Bearer test-token');
    expect(imported.targets.map((t) => [t.target.name, t.ports.map((p) => `${p.port}/${p.protocol} ${p.maxDurationMs / 60_000}m ${p.allowedSourcePrefixes.join(',')}`), t.policy])).toEqual([
      ['vm1', ['22/* 180m *', '3389/* 180m *'], 'myRg1/default'],
      ['vm2', ['22/tcp 60m 192.168.0.0/16'], 'myRg2/default'],
    ]);
  });

  it('opens with one initiate (VM, port, source, endTimeUtc, justification), then reads the policy until the port is Initiated; the rule carries Defender\'s request id', async () => {
    const expiresAt = Date.now() + 3600_000;
    const end = new Date(expiresAt).toISOString();
    const justification = 'jit-bot request=rnock00001 for alice@contoso.com: testing a new version of the product';
    let sent: InitiateWire | undefined;
    nock(ARM)
      .get(LIST).query(true).reply(200, { value: [policyDoc()] })
      .get(POLICY).query({ 'api-version': '2020-01-01' }).reply(200, policyDoc())
      .post(`${POLICY}/initiate`).query({ 'api-version': '2020-01-01' })
      .reply(function (_uri, body) {
        sent = body as InitiateWire;
        expect(this.req.headers['content-type']).toBe('application/json');
        const answer = request(justification, end, 'Initiating', '2030-07-12T08:53:03.3658798Z');
        return [202, answer, { 'x-ms-request-id': 'a4f6e1c2-0000-4000-8000-000000000001', 'x-ms-correlation-request-id': 'c0rre1at-10n0-0000-0000-000000000000' }];
      })
      // Defender applies the request a little later: Initiating first, then Initiated.
      .get(POLICY).query(true).reply(200, policyDoc([request(justification, end, 'Initiating')]))
      .get(POLICY).query(true).reply(200, policyDoc([request(justification, end, 'Initiated')]));
    const rules = await gate().open({ requestId: 'rnock00001', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '192.127.0.2/32', expiresAt, requester: p('alice@contoso.com'), justification: 'testing a new version of the product' });
    expect(sent).toEqual({ virtualMachines: [{ id: VM, ports: [{ number: 3389, allowedSourceAddressPrefix: '192.127.0.2', endTimeUtc: end }] }], justification });
    expect(rules).toEqual([
      {
        name: 'jit-rnock00001-3389', scope: POLICY, priority: 0, direction: 'Inbound', access: 'Allow', protocol: '*', sourcePrefix: '192.127.0.2/32', destinationPort: 3389,
        description: `Defender for Cloud JIT request on ${VM} until ${end}`, requestId: 'rnock00001', expiresAt,
        ref: `initiate x-ms-request-id=a4f6e1c2-0000-4000-8000-000000000001 startTimeUtc=2030-07-12T08:53:03.3658798Z endTimeUtc=${end} status=Initiating`,
      },
    ]);
    expect(nock.isDone()).toBe(true);
  });

  it('Defender\'s refusal (ARM\'s error shape) fails the open with Defender\'s words, without retrying', async () => {
    const message = `The given access request is not a subset of policy '${POLICY}'. Please make sure that the access request is within the allowed policy properties.`;
    let posts = 0;
    nock(ARM)
      .get(LIST).query(true).reply(200, { value: [policyDoc()] })
      .get(POLICY).query(true).reply(200, policyDoc())
      .post(`${POLICY}/initiate`).query(true).times(3)
      .reply(() => {
        posts++;
        return [400, { error: { code: 'BadRequest', message } }];
      });
    await expect(gate().open({ requestId: 'rnock00002', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '192.127.0.2/32', expiresAt: Date.now() + 3600_000 })).rejects.toThrow(
      `Defender for Cloud refused the request (400 BadRequest): ${message}`,
    );
    expect(posts).toBe(1);
  });

  it('429 on the initiate is retried after Retry-After; 404 PolicyNotFound is not', async () => {
    waits.length = 0;
    const end = new Date(Date.now() + 3600_000).toISOString();
    const justification = 'jit-bot request=rnock00003';
    nock(ARM)
      .get(LIST).query(true).reply(200, { value: [policyDoc()] })
      .get(POLICY).query(true).reply(200, policyDoc())
      .post(`${POLICY}/initiate`).query(true).reply(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'Retry-After': '3' })
      .post(`${POLICY}/initiate`).query(true).reply(202, request(justification, end, 'Initiating'))
      .get(POLICY).query(true).reply(200, policyDoc([request(justification, end, 'Initiated')]));
    await gate().open({ requestId: 'rnock00003', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '192.127.0.2/32', expiresAt: Date.parse(end) });
    expect(waits.some((w) => w >= 3000)).toBe(true);

    nock(ARM)
      .get(LIST).query(true).reply(200, { value: [policyDoc()] })
      .get(POLICY).query(true).reply(200, policyDoc())
      .post(`${POLICY}/initiate`).query(true).reply(404, { error: { code: 'PolicyNotFound', message: 'gone' } });
    await expect(gate().open({ requestId: 'rnock00004', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '192.127.0.2/32', expiresAt: Date.now() + 3600_000 })).rejects.toThrow(/404 PolicyNotFound/);
  });

  it('closing: no revoke in the API, so an initiate ending now; refused, one ending a minute from now; the older request is left to Defender', async () => {
    const justification = 'jit-bot request=rnock00005 for alice@contoso.com';
    const open = request(justification, new Date(Date.now() + 3600_000).toISOString(), 'Initiated');
    const bodies: InitiateWire[] = [];
    nock(ARM)
      .get(LIST).query(true).reply(200, { value: [policyDoc([open])] })
      .get(POLICY).query(true).reply(200, policyDoc([open]))
      .post(`${POLICY}/initiate`).query(true)
      .reply((_uri, body) => {
        bodies.push(body as InitiateWire);
        return [400, { error: { code: 'BadRequest', message: 'end time too early' } }];
      })
      .post(`${POLICY}/initiate`).query(true)
      .reply((_uri, body) => {
        bodies.push(body as InitiateWire);
        const b = body as InitiateWire;
        return [202, request(b.justification!, b.virtualMachines[0]!.ports[0]!.endTimeUtc, 'Initiating')];
      });
    const t0 = Date.now();
    const closed = await gate().close('rnock00005', target);
    const ends = bodies.map((b) => Date.parse(b.virtualMachines[0]!.ports[0]!.endTimeUtc) - t0);
    expect(ends[0]).toBeLessThan(1000);
    expect(ends[1]).toBeGreaterThanOrEqual(60_000);
    expect(ends[1]).toBeLessThan(61_000 + (Date.now() - t0));
    expect(bodies.map((b) => b.justification)).toEqual(['jit-bot request=rnock00005 (ended early)', 'jit-bot request=rnock00005 (ended early, +1 min)']);
    expect(bodies[1]!.virtualMachines[0]!.ports[0]!.allowedSourceAddressPrefix).toBe('192.127.0.2');
    expect(closed).toHaveLength(1);
    expect(closed[0]!.ref).toMatch(/ends the grant early \(was until /);
    expect(nock.isDone()).toBe(true);
  });

  it('a request that already ended (Revoked / Expired) or is not the bot\'s is not asked about again', async () => {
    const ended = { ...request('jit-bot request=rnock00006', new Date(Date.now() + 3600_000).toISOString(), 'Revoked'), startTimeUtc: new Date(Date.now() - 1000).toISOString() };
    const portal = request('patching, by hand', new Date(Date.now() + 3600_000).toISOString(), 'Initiated');
    nock(ARM)
      .get(LIST).query(true).times(2).reply(200, { value: [policyDoc([ended, portal])] })
      .get(POLICY).query(true).reply(200, policyDoc([ended, portal]));
    const g = gate();
    expect(await g.close('rnock00006', target)).toEqual([]);
    expect(await g.list()).toEqual([]);
  });
});
