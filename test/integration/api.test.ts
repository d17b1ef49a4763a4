// The REST API (/api/v1): bearer tokens stored hashed and bound to principals, RBAC as in chat,
// the request life cycle over HTTP, audit as JSON and CSV, and the OpenAPI document.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { startJit } from '../../src/bootstrap.js';
import { Conformance, openApiDocumentProblems } from '../fixtures/openapi-conformance.js';
import { localHeaders, startHarness, waitFor, type Harness } from './harness.js';

const TOKENS: Record<string, string> = {
  alice: 'jit_alice-token-0123456789abcdefghij',
  bob: 'jit_bob-token-0123456789abcdefghijkl',
  dave: 'jit_dave-token-0123456789abcdefghijk',
  erin: 'jit_erin-token-0123456789abcdefghijk',
  mallory: 'jit_mallory-token-0123456789abcdefg',
};
const hash = (t: string) => createHash('sha256').update(t).digest('hex');
const CONFIG = Object.entries(TOKENS).map(([who, t]) => `${who}@contoso.com=sha256:${hash(t)}`).join(',');

let h: Harness;
/** Every answer `api()` gets is checked against the served OpenAPI document. */
let doc: Conformance;
beforeAll(async () => {
  // PUBLIC_URL: a request without a source waits for it (the "my IP" link), source null.
  h = await startHarness({ JIT_API_TOKENS: CONFIG, PUBLIC_URL: 'https://jit.contoso.example' });
  doc = new Conformance((await (await fetch(`${h.app.url}/api/v1/openapi.json`)).json()) as ConstructorParameters<typeof Conformance>[0]);
});
afterAll(async () => {
  await h?.close();
});

async function api(who: keyof typeof TOKENS | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; res: Response }> {
  const res = await fetch(`${h.app.url}/api/v1${path}`, {
    method,
    headers: { ...(who ? { authorization: `Bearer ${TOKENS[who]}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text) as unknown;
    json = parsed as Record<string, unknown>;
  } catch {
    json = { text };
  }
  // The answer as the document describes it: status documented, body matching its schema.
  expect(doc.check(method, `/api/v1${path}`, res.status, res.headers.get('content-type'), parsed), `${method} ${path} → ${res.status}`).toEqual([]);
  return { status: res.status, json, res };
}
const idOf = (r: { json: Record<string, unknown> }) => (r.json.request as { id: string }).id;

describe('authentication', () => {
  it('no token, a wrong token or a malformed header → 401 with WWW-Authenticate, nothing changes', async () => {
    const before = (await h.audit()).length;
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer jit_not-a-real-token-000000000000' }, { authorization: `Basic ${TOKENS.alice}` }, { authorization: `Bearer ${TOKENS.alice}x` }];
    for (const headers of attempts) {
      const res = await fetch(`${h.app.url}/api/v1/requests`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ target: 'vm1', kind: 'rdp', duration: '1h', source: '203.0.113.5' }) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await h.audit()).length).toBe(before);
  });

  it('the configuration keeps only hashes; a malformed entry or an unknown principal stops start-up naming JIT_API_TOKENS', async () => {
    expect(() => loadConfig({ JIT_API_TOKENS: `alice@contoso.com=${TOKENS.alice}` })).toThrow(/JIT_API_TOKENS: .*must be principal=sha256:/);
    await expect(startJit({ env: { ...process.env, PORT: '0', JIT_POLICY_FILE: 'test/fixtures/../../config/policy.example.yaml', JIT_API_TOKENS: `nobody@contoso.com=sha256:${hash('x')}`, JIT_DATA_DIR: '/tmp' } })).rejects.toThrow(/JIT_API_TOKENS: nobody@contoso.com is not a principal of the policy file/);
  });

  it('the OpenAPI document is public, valid against the official OpenAPI 3.1 schema, and names every operation', async () => {
    const r = await api(null, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    expect(openApiDocumentProblems(r.json)).toEqual([]);
    const paths = r.json.paths as Record<string, Record<string, { operationId?: string }>>;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/commands', '/card-actions', '/requests', '/requests/{id}', '/requests/{id}/approve', '/requests/{id}/deny', '/requests/{id}/revoke', '/requests/{id}/extend', '/targets', '/audit', '/audit.csv']));
    const ids = Object.values(paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(ids.every((x) => typeof x === 'string' && /^[a-z][A-Za-z]+$/.test(x))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect((r.json.components as { securitySchemes: object }).securitySchemes).toHaveProperty('bearer');
    // The checker does catch an answer that does not match (so the live checks can fail).
    expect(doc.check('GET', '/api/v1/requests', 200, 'application/json', { requests: [{ id: 'rk2m9qx7ab' }] }).join()).toMatch(/must have required property/);
    expect(doc.check('POST', '/api/v1/requests', 418, 'application/json', {}).join()).toMatch(/status 418 is not documented/);
  });
});

describe('the life cycle over HTTP, RBAC as in chat', () => {
  it('create → list → get → approve → extend → revoke', async () => {
    const created = await api('alice', 'POST', '/requests', { target: 'vm1', kind: 'rdp', duration: '1h', source: '203.0.113.20', justification: 'INC-42' });
    expect(created.status).toBe(201);
    expect(created.json.kind).toBe('pending_approval');
    const id = idOf(created);
    const listed = await api('alice', 'GET', '/requests?status=pending');
    expect((listed.json.requests as Array<{ id: string }>).map((r) => r.id)).toContain(id);
    expect((await api('alice', 'GET', `/requests/${id}`)).json).toMatchObject({ kind: 'status', request: { id, status: 'pending', requester: 'alice@contoso.com' } });
    // How it came in is origin.via; origin.channel (its name until 2026-12-03) stays in answers for older clients.
    const listedOrigin = (listed.json.requests as Array<{ id: string; origin: unknown }>).find((r) => r.id === id)!.origin;
    expect(listedOrigin).toEqual({ via: 'api', channel: 'api' });
    expect((created.json.request as { origin: unknown }).origin).toEqual({ via: 'api', channel: 'api' });
    expect(JSON.stringify(await h.get(id))).not.toContain('"channel"');

    // The requester cannot approve her own request; a stranger is told it does not exist.
    expect((await api('alice', 'POST', `/requests/${id}/approve`)).status).toBe(403);
    expect((await api('mallory', 'GET', `/requests/${id}`)).status).toBe(404);
    // ... whatever they try on it (a 403 would confirm the id and name its approvers).
    expect((await api('mallory', 'POST', `/requests/${id}/approve`)).status).toBe(404);

    const approved = await api('bob', 'POST', `/requests/${id}/approve`);
    expect(approved.status).toBe(200);
    expect((await h.get(id))!.status).toBe('active');
    expect((await h.rules()).filter((r) => r.requestId === id)).toHaveLength(1);
    expect((await api('bob', 'POST', `/requests/${id}/approve`)).status).toBe(409);

    const extended = await api('alice', 'POST', `/requests/${id}/extend`, { duration: '30m' });
    expect([200]).toContain(extended.status);
    expect((await api('alice', 'POST', `/requests/${id}/extend`, { duration: '99h' })).status).toBe(400);
    expect((await api('erin', 'POST', `/requests/${id}/revoke`)).status).toBe(403);
    expect((await api('alice', 'POST', `/requests/${id}/revoke`)).status).toBe(200);
    await waitFor('closed', async () => ((await h.rules()).some((r) => r.requestId === id) ? null : true));
    // Every step went through the service: it is in the audit log like a chat command.
    expect((await h.audit(id)).map((e) => e.action)).toEqual(expect.arrayContaining(['request.created', 'request.approved', 'grant.activated', 'grant.revoked']));
  });

  it('deny with a reason', async () => {
    const id = idOf(await api('alice', 'POST', '/requests', { target: 'vm1', kind: 'port', ports: [3389], duration: '30m', source: '203.0.113.21' }));
    const denied = await api('bob', 'POST', `/requests/${id}/deny`, { reason: 'not in a change window' });
    expect(denied.status).toBe(200);
    expect((await h.get(id))!).toMatchObject({ status: 'denied' });
  });

  it('a Reader sees but cannot request; bad input gets 400/404 with the reason and changes nothing', async () => {
    expect((await api('erin', 'POST', '/requests', { target: 'vm1', kind: 'rdp', duration: '1h', source: '203.0.113.22' })).status).toBe(403);
    expect((await api('erin', 'GET', '/targets')).json.kind).toBe('inventory');
    const before = (await h.audit()).length;
    const cases: Array<[unknown, number, RegExp]> = [
      [{ target: 'vm99', kind: 'rdp', duration: '1h', source: '203.0.113.23' }, 404, /vm99/],
      [{ target: 'vm1', kind: 'rdp', duration: '99h', source: '203.0.113.23' }, 400, /.+/],
      [{ target: 'vm1', kind: 'rdp', duration: '1h', source: '203.0.113.999' }, 400, /.+/],
      [{ target: 'vm1', kind: 'port', ports: [8443], duration: '1h', source: '203.0.113.23' }, 400, /8443/],
      [{ target: 'vm1', kind: 'telnet', duration: '1h' }, 400, /kind/],
      [{ kind: 'rdp', duration: '1h' }, 400, /target/],
      [[1, 2], 400, /JSON object/],
    ];
    for (const [body, status, message] of cases) {
      const r = await api('alice', 'POST', '/requests', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(String(r.json.error), JSON.stringify(body)).toMatch(message);
    }
    expect((await api('alice', 'GET', '/requests/not-an-id')).status).toBe(404);
    expect((await api('alice', 'GET', '/requests?status=bogus')).status).toBe(400);
    expect((await h.audit()).length).toBe(before);
  });

  it('the limits the document states are the ones the server applies: justification and deny reason ≤ 500, no unknown fields', async () => {
    const spec = (await api(null, 'GET', '/openapi.json')).json as { components: { schemas: Record<string, { properties: Record<string, { maxLength?: number }> }> } };
    const max = spec.components.schemas.NewRequest!.properties.justification!.maxLength!;
    expect(spec.components.schemas.DenyBody!.properties.reason!.maxLength).toBe(max);
    const base = { target: 'vm1', kind: 'rdp', duration: '1h', source: '203.0.113.24' };
    const tooLong = await api('alice', 'POST', '/requests', { ...base, justification: 'x'.repeat(max + 1) });
    expect(tooLong.status).toBe(400);
    expect(String(tooLong.json.error)).toMatch(/the justification is 501 characters; at most 500/);
    const atMax = await api('alice', 'POST', '/requests', { ...base, justification: '&'.repeat(max) });
    expect(atMax.status).toBe(201);
    const id = idOf(atMax);
    expect((await api('bob', 'POST', `/requests/${id}/deny`, { reason: 'n'.repeat(max + 1) })).status).toBe(400);
    expect((await h.get(id))!.status).toBe('pending');
    const typo = await api('alice', 'POST', '/requests', { ...base, justifcation: 'INC-1' });
    expect(typo.status).toBe(400);
    expect(String(typo.json.error)).toMatch(/unknown field "justifcation"/);
    expect((await api('bob', 'POST', `/requests/${id}/deny`, { reason: 'not now' })).status).toBe(200);
  });

  it('a request waiting for its source address has source null, as documented', async () => {
    const created = await api('alice', 'POST', '/requests', { target: 'vm1', kind: 'rdp', duration: '1h' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ kind: 'awaiting_source', request: { source: null, status: 'awaiting_source' } });
    const got = await api('alice', 'GET', `/requests/${idOf(created)}`);
    expect((got.json.request as { source: unknown }).source).toBeNull();
    await api('alice', 'POST', `/requests/${idOf(created)}/revoke`);
  });

  it('413 for a body over 64 KiB and 400 for a card action that is not one, both documented', async () => {
    const big = await api('alice', 'POST', '/requests', JSON.stringify({ target: 'vm1', kind: 'rdp', duration: '1h', justification: 'x'.repeat(70 * 1024) }));
    expect(big.status).toBe(413);
    for (const bad of [{ verb: 'launch', data: {} }, { verb: 'approve', data: { requestId: 42 } }, { data: {} }, 'not json']) {
      const r = await api('bob', 'POST', '/card-actions', bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    // A well-formed action on a request that does not exist: 404 as GET /requests/{id}, documented too.
    const unknown = await api('bob', 'POST', '/card-actions', { verb: 'refresh', data: { requestId: 'rzzzzzzzzz' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ kind: 'message', code: 'not_found' });
  });

  it('list shows only what the caller may see', async () => {
    const mine = idOf(await api('dave', 'POST', '/requests', { target: 'dev1', kind: 'ssh', duration: '30m', source: '203.0.113.30' }));
    expect(((await api('dave', 'GET', '/requests')).json.requests as Array<{ id: string }>).map((r) => r.id)).toContain(mine);
    expect(((await api('alice', 'GET', '/requests')).json.requests as Array<{ id: string }>).map((r) => r.id)).not.toContain(mine);
    expect((await api('mallory', 'GET', '/requests')).json.requests).toEqual([]);
  });
});

describe('audit over the API', () => {
  it('JSON and CSV, with the caller\'s RBAC', async () => {
    const all = await api('dave', 'GET', '/audit?target=vm1&since=7d');
    expect(all.status).toBe(200);
    const rows = all.json.rows as Array<{ requestId: string; operation: string }>;
    expect(rows.length).toBeGreaterThan(5);
    expect((await api('mallory', 'GET', '/audit')).json.rows).toEqual([]);
    expect((await api('dave', 'GET', '/audit?target=vm99')).status).toBe(404);
    const csv = await api('dave', 'GET', '/audit.csv?target=vm1');
    expect(csv.res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const text = String(csv.json.text);
    expect(text.split('\r\n')[0]).toMatch(/^Time,Operation,Status,Caller,Resource,Request ID/);
    expect(text.split('\r\n').filter(Boolean).length).toBeGreaterThanOrEqual(rows.length + 1);
  });
});

describe('commands and the local channel', () => {
  it('POST /commands runs the chat grammar as the token\'s principal; a refusal has its status and text', async () => {
    const ok = await api('alice', 'POST', '/commands', { text: 'rdp vm1 1h from 203.0.113.40' });
    expect(ok.status).toBe(200);
    expect(ok.json.text).toMatch(/waiting for approval/);
    const bad = await api('alice', 'POST', '/commands', { text: 'rdp vm1 99h from 203.0.113.40' });
    expect(bad.status).toBe(400);
    expect(String(bad.json.text)).toMatch(/at most 3h/);
  });

  it('X-Jit-Act-As works on the local channel (with its secret); RBAC still decides what the principal may do', async () => {
    const res = await fetch(`${h.app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'bob@contoso.com', ...localHeaders(h.app) }, body: JSON.stringify({ text: 'list pending' }) });
    expect(res.status).toBe(200);
    // The header is parsed as every principal is (src/core/ids.ts): trimmed and lower-cased, the same person.
    const spelt = await fetch(`${h.app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'Bob@Contoso.COM', ...localHeaders(h.app) }, body: JSON.stringify({ text: 'vms' }) });
    expect(spelt.status).toBe(200);
    expect(((await spelt.json()) as { reply: { configured: unknown[] } }).reply.configured.length).toBeGreaterThan(0);
    const stranger = await fetch(`${h.app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'eve@evil.example', ...localHeaders(h.app) }, body: JSON.stringify({ text: 'rdp vm1 1h from 203.0.113.42' }) });
    expect(stranger.status).toBe(403);
    const garbage = await fetch(`${h.app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'not a principal', ...localHeaders(h.app) }, body: JSON.stringify({ text: 'list' }) });
    expect(garbage.status).toBe(401);
  });

  it('without the local channel, X-Jit-Act-As is refused', async () => {
    const off = await startHarness({ JIT_LOCAL_CHANNEL: 'false', JIT_API_TOKENS: CONFIG });
    try {
      const res = await fetch(`${off.app.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': 'dave@contoso.com' }, body: JSON.stringify({ text: 'rdp vm1 1h from 203.0.113.41' }) });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/local channel/);
    } finally {
      await off.close();
    }
  });
});
