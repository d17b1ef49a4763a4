// Policy groups backed by an Entra ID group, read over Microsoft Graph's wire format (nock):
// transitiveMembers cast to microsoft.graph.user with $select, paging by @odata.nextLink, 429 with
// Retry-After, errors as Graph writes them. Then through the real service (startJit, the real
// Redis): members approve through the group, a member removed in the directory loses the right by
// the next refresh (and at the latest one TTL after the last good read), a directory that cannot
// be read suspends the group's rights (the refusal and /readyz say so) and never widens them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GraphGroupDirectory } from '../../src/adapters/graph/groups.js';
import { loadConfig } from '../../src/config/env.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { requestOf, startHarness, type Harness } from './harness.js';

const GRAPH = 'https://graph.microsoft.com';
const GROUP = '0b6f1a52-3c1e-4d7e-9a55-2f3c4d5e6f70';
const PATH = `/v1.0/groups/${GROUP}/transitiveMembers/microsoft.graph.user`;
const QUERY = { $select: 'id,userPrincipalName,mail', $top: '999' };
const user = (id: string, upn: string, mail: string | null = upn) => ({ '@odata.type': '#microsoft.graph.user', id, userPrincipalName: upn, mail });
const page = (value: unknown[], next?: string) => ({ '@odata.context': `${GRAPH}/v1.0/$metadata#users(id,userPrincipalName,mail)`, ...(next ? { '@odata.nextLink': next } : {}), value });

describe('GraphGroupDirectory on Graph\'s wire format (nock)', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    nock.cleanAll();
  });
  afterAll(() => nock.enableNetConnect());
  const waits: number[] = [];
  const graph = () => new GraphGroupDirectory({ token: async () => 'graph-token', sleep: async (ms) => void waits.push(ms) });

  it('follows @odata.nextLink over every page, with the bearer token, and returns UPN and mail of each user', async () => {
    const next = `${GRAPH}${PATH}?$select=id,userPrincipalName,mail&$top=999&$skiptoken=RFNwdAIAAQAAAA`;
    nock(GRAPH, { reqheaders: { authorization: 'Bearer graph-token' } })
      .get(PATH).query(QUERY).reply(200, page([user('id-bob', 'bob@contoso.com'), user('id-ext', 'ext_x#EXT#@contoso.onmicrosoft.com', 'x@partner.example')], next))
      .get(PATH).query({ ...QUERY, $skiptoken: 'RFNwdAIAAQAAAA' }).reply(200, page([user('id-carol', 'carol@contoso.com', null)]));
    const members = await graph().members(GROUP);
    expect(members).toEqual([
      { id: 'id-bob', names: ['bob@contoso.com', 'bob@contoso.com'] },
      { id: 'id-ext', names: ['ext_x#EXT#@contoso.onmicrosoft.com', 'x@partner.example'] },
      { id: 'id-carol', names: ['carol@contoso.com'] },
    ]);
    expect(nock.isDone()).toBe(true);
  });

  it('waits out 429 for Retry-After seconds, then reads the page again', async () => {
    waits.length = 0;
    nock(GRAPH)
      .get(PATH).query(QUERY).reply(429, { error: { code: 'TooManyRequests', message: 'Too many requests' } }, { 'Retry-After': '7' })
      .get(PATH).query(QUERY).reply(200, page([user('id-bob', 'bob@contoso.com')]));
    expect((await graph().members(GROUP)).map((m) => m.id)).toEqual(['id-bob']);
    expect(waits).toEqual([7000]);
    expect(nock.isDone()).toBe(true);
  });

  it('fails (never a partial list) when throttling outlasts the retries or a later page fails', async () => {
    nock(GRAPH).get(PATH).query(QUERY).times(4).reply(429, { error: { code: 'TooManyRequests' } }, { 'Retry-After': '1' });
    await expect(graph().members(GROUP)).rejects.toThrow(/HTTP 429 TooManyRequests/);
    nock(GRAPH)
      .get(PATH).query(QUERY).reply(200, page([user('id-bob', 'bob@contoso.com')], `${GRAPH}${PATH}?$skiptoken=p2`))
      .get(PATH).query({ $skiptoken: 'p2' }).reply(500, { error: { code: 'UnknownError', message: 'boom' } });
    await expect(graph().members(GROUP)).rejects.toThrow(/HTTP 500 UnknownError: boom/);
  });

  it('names the missing permission on 403 and the object id on 404', async () => {
    nock(GRAPH).get(PATH).query(QUERY).reply(403, { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' } });
    await expect(graph().members(GROUP)).rejects.toThrow(/Authorization_RequestDenied.*GroupMember\.Read\.All/);
    nock(GRAPH).get(PATH).query(QUERY).reply(404, { error: { code: 'Request_ResourceNotFound', message: `Resource '${GROUP}' does not exist` } });
    await expect(graph().members(GROUP)).rejects.toThrow(/no such group .*Request_ResourceNotFound.*object id/);
  });

  it('does not send the token to a next link on another host', async () => {
    nock(GRAPH).get(PATH).query(QUERY).reply(200, page([user('id-bob', 'bob@contoso.com')], 'https://evil.example/v1.0/steal'));
    await expect(graph().members(GROUP)).rejects.toThrow(/nextLink points outside https:\/\/graph\.microsoft\.com/);
  });
});

describe('JIT_DIRECTORY_TTL', () => {
  it('is validated with a message naming the variable', () => {
    expect(loadConfig({}).JIT_DIRECTORY_TTL).toBe(600_000);
    expect(loadConfig({ JIT_DIRECTORY_TTL: '2m' }).JIT_DIRECTORY_TTL).toBe(120_000);
    expect(() => loadConfig({ JIT_DIRECTORY_TTL: 'soon' })).toThrow(/JIT_DIRECTORY_TTL: "soon" is not a duration/);
    expect(() => loadConfig({ JIT_DIRECTORY_TTL: '1s' })).toThrow(/JIT_DIRECTORY_TTL: must be between 10s and 24h/);
  });
});

describe('an Entra ID group through the running service', () => {
  // oncall (the approvers of every VM, with JIT Approver at the subscription) comes from Entra ID;
  // alice is pinned to another Entra account than the one that carries her UPN in the group.
  const POLICY = TEST_POLICY_YAML.replace('oncall: [bob@contoso.com, carol@contoso.com]', `oncall: { entra: ${GROUP} }`).replace(
    'alice@contoso.com: { slack: U024ALICE }',
    'alice@contoso.com: { slack: U024ALICE, teams: 11111111-1111-1111-1111-111111111111 }',
  );
  const TTL = 60_000;
  let h: Harness;
  let dir: string;
  let skew = 0;
  let members: unknown[] = [];
  let down = false;

  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1|localhost/);
    // The "directory": bob directly, carol through a nested group (Graph flattens it); an account
    // whose UPN is alice's but which is not the account alice is pinned to.
    members = [user('id-bob', 'bob@contoso.com'), user('id-carol', 'carol@contoso.com'), user('id-fake-alice', 'alice@contoso.com')];
    nock(GRAPH)
      .persist()
      .get(PATH)
      .query(QUERY)
      .reply(() => (down ? [503, { error: { code: 'ServiceUnavailable', message: 'Service is unavailable' } }, { 'Retry-After': '0' }] : [200, page(members)]));
    dir = mkdtempSync(join(tmpdir(), 'jit-graph-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    h = await startHarness(
      { JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_DIRECTORY_TTL: `${TTL / 1000}s` },
      {
        clock: { now: () => Date.now() + skew },
        groupDirectories: [new GraphGroupDirectory({ token: async () => 'graph-token', maxRetries: 1, sleep: async () => {} })],
      },
    );
  });

  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
    nock.cleanAll();
    nock.enableNetConnect();
  });

  const pending = async (): Promise<string> => {
    const { reply } = await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.7');
    return requestOf(reply).id;
  };
  const readyz = async () => {
    const res = await fetch(`${h.app.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };

  it('members of the Entra ID group (nested ones too) approve; nobody else gains the group\'s rights', async () => {
    expect(await readyz()).toMatchObject({ status: 200, body: { directory: 'ok' } });
    const id = await pending();
    // Her UPN on another Entra account than the one she is pinned to lends her nothing: bob's request is not hers to see or decide.
    const bobs = requestOf((await h.cmd('bob@contoso.com', 'rdp vm1 1h from 203.0.113.8')).reply).id;
    expect((await h.cmd('alice@contoso.com', `approve ${bobs}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
    expect(await h.app.service.approversFor((await h.get(bobs))!)).toEqual(['carol@contoso.com']);
    const approved = await h.cmd('carol@contoso.com', `approve ${id}`);
    expect(requestOf(approved.reply).status).toBe('active');
  });

  it('a member removed in the directory loses the right at the next refresh', async () => {
    members = [user('id-carol', 'carol@contoso.com')];
    await h.app.service.refreshDirectoryGroups();
    const id = await pending();
    // Bob keeps his own JIT Requester role but no longer reads others' requests: not even this one's existence.
    const bob = await h.cmd('bob@contoso.com', `approve ${id}`);
    expect(bob.reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
    expect((await h.get(id))?.status).toBe('pending');
    expect(await h.app.service.approversFor((await h.get(id))!)).toEqual(['carol@contoso.com']);
    expect(requestOf((await h.cmd('carol@contoso.com', `approve ${id}`)).reply).status).toBe('active');
  });

  it('directory down: the last good membership holds until one TTL old, then the group holds nothing; refusal and /readyz name it', async () => {
    members = [user('id-carol', 'carol@contoso.com')];
    await h.app.service.refreshDirectoryGroups();
    down = true;
    await h.app.service.refreshDirectoryGroups();
    // Within the TTL: carol still decides, /readyz reports the failing refresh.
    const first = await pending();
    expect(requestOf((await h.cmd('carol@contoso.com', `approve ${first}`)).reply).status).toBe('active');
    const grace = await readyz();
    expect(grace.status).toBe(503);
    expect(grace.body.directory).toMatch(new RegExp(`Entra ID group ${GROUP}: last refresh failed \\(Microsoft Graph answered HTTP 503 ServiceUnavailable`));

    skew += TTL + 1000; // one TTL after the last good read
    const id = await pending();
    const carol = await h.cmd('carol@contoso.com', `approve ${id}`);
    // Carol's only role comes through the group: she sees nothing, and is told why.
    expect(carol.reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
    expect(carol.text).toContain(`the directory could not be read for group oncall [Entra ID group ${GROUP}`);
    expect(carol.text).toContain('suspended');
    // Never widened: with the named approvers unknown, the JIT Admin who is not in the group cannot decide either.
    const dave = await h.cmd('dave@contoso.com', `approve ${id}`);
    expect(dave.reply).toMatchObject({ kind: 'rejected', code: 'not_approver' });
    expect(dave.text).toContain('approvers: none configured (the directory could not be read for group oncall');
    expect((await h.get(id))?.status).toBe('pending');
    const ready = await readyz();
    expect(ready.status).toBe(503);
    expect(ready.body.directory).toMatch(new RegExp(`unresolved: Entra ID group ${GROUP}: the last good read is older than 60s; the directory said: Microsoft Graph answered HTTP 503.*rights through it are suspended`));

    down = false;
    await h.app.service.refreshDirectoryGroups();
    expect(requestOf((await h.cmd('carol@contoso.com', `approve ${id}`)).reply).status).toBe('active');
    expect(await readyz()).toMatchObject({ status: 200, body: { directory: 'ok' } });
  });
});
