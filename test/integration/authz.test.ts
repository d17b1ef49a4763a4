// Authorization, table-driven: roles × actions × scopes, on the real service and Redis.
// Fixture roles (test/fixtures/book.ts): alice JIT Requester on prod and dev; bob JIT Requester
// on prod and, through group:oncall, JIT Approver on the subscription; carol Approver (oncall);
// dave JIT Admin on the subscription; erin JIT Reader; mallory no role at all.
// Deciding needs both: named by the policy (vm1: group:oncall) and the approve permission at a
// covering scope. Whoever may not see a request is told it does not exist, whatever they tried.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reply } from '../../src/core/reply.js';
import { testBook } from '../fixtures/book.js';
import { requestOf, startHarness, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
const run = (as: string, text: string): Promise<Reply> => h.app.service.execute(p(as), text, { via: 'test' });
const refused = (r: Reply) => (r.kind === 'rejected' ? r.code : 'allowed');

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** A fresh pending request by alice on vm1 (prod). */
async function pending(): Promise<string> {
  return requestOf(await run('alice@contoso.com', 'rdp vm1 1h from 203.0.113.7')).id;
}
/** A fresh active grant for alice on vm1. */
async function active(): Promise<string> {
  const id = await pending();
  await run('bob@contoso.com', `approve ${id}`);
  return id;
}

type Outcome = 'allowed' | string;
const P = ['alice@contoso.com', 'bob@contoso.com', 'carol@contoso.com', 'dave@contoso.com', 'erin@contoso.com', 'mallory@contoso.com'] as const;

// action → [setup, command(id), expected outcome per principal in P's order]
const TABLE: Array<[string, () => Promise<string>, (id: string) => string, Outcome[]]> = [
  ['request on prod', async () => '', () => 'rdp vm1 1h from 198.51.100.1', ['allowed', 'allowed', 'forbidden', 'allowed', 'forbidden', 'forbidden']],
  ['request on dev', async () => '', () => 'ssh dev1 30m from 198.51.100.2', ['allowed', 'forbidden', 'forbidden', 'allowed', 'forbidden', 'forbidden']],
  // vm1's policy names its approvers (group:oncall): they, and only they, decide, even over a JIT Admin
  // (who may change the policy, audited, but not bypass it).
  ['approve alice\'s request', pending, (id) => `approve ${id}`, ['not_approver', 'allowed', 'allowed', 'not_approver', 'not_approver', 'not_found']],
  ['deny alice\'s request', pending, (id) => `deny ${id} reason "no"`, ['not_approver', 'allowed', 'allowed', 'not_approver', 'not_approver', 'not_found']],
  ['revoke alice\'s grant', active, (id) => `revoke ${id}`, ['allowed', 'forbidden', 'forbidden', 'allowed', 'forbidden', 'not_found']],
  ['extend alice\'s grant', active, (id) => `extend ${id} 30m`, ['allowed', 'allowed', 'allowed', 'allowed', 'forbidden', 'not_found']],
  // Someone who may not see a request is told it does not exist (ids are not confirmed to outsiders).
  ['view alice\'s request', pending, (id) => `status ${id}`, ['allowed', 'allowed', 'allowed', 'allowed', 'allowed', 'not_found']],
  ['change vm1\'s policy', async () => '', () => 'policy enable vm1', ['forbidden', 'forbidden', 'forbidden', 'allowed', 'forbidden', 'forbidden']],
];

describe('authorization matrix', () => {
  for (const [action, setup, command, expected] of TABLE) {
    it(`${action}: ${P.map((p, i) => `${p.split('@')[0]}=${expected[i]}`).join(' ')}`, async () => {
      const got: Outcome[] = [];
      for (const who of P) {
        const id = await setup();
        const reply = await run(who, command(id));
        // extend by the requester on an approval-required target waits for approvers: still "allowed" to ask.
        got.push(refused(reply));
        if (id) {
          const r = await h.app.service.get(id);
          if (r && (r.status === 'active' || r.status === 'pending')) await run('dave@contoso.com', `revoke ${id}`);
        }
      }
      expect(got).toEqual(expected);
    });
  }

  it('"list all" shows only what the caller may read', async () => {
    await pending();
    const seen = async (who: string) => {
      const r = await run(who, 'list all');
      return r.kind === 'list' ? r.requests.length : -1;
    };
    expect(await seen('erin@contoso.com')).toBeGreaterThan(0); // Reader on the subscription
    expect(await seen('mallory@contoso.com')).toBe(0);
  });
});

// Issue 17 item 5: vm1's policy still names group:oncall, but the group lost its JIT Approver role.
// Being named is not enough: its members neither decide nor see; carol is left with no role at all.
describe('authorization matrix after group:oncall lost its JIT Approver role', () => {
  const withoutOncallRole = () => {
    const book = testBook();
    return { ...book, roles: book.roles.filter((r) => !(r.principal === 'group:oncall' && r.role === 'JIT Approver')) };
  };
  /** Runs `fn` with the reduced book; requests are made (and cleaned up) with the full one. */
  const reduced = async <T>(fn: () => Promise<T>): Promise<T> => {
    const original = h.app.service.policyBook();
    h.app.service.setPolicyBook(withoutOncallRole());
    try {
      return await fn();
    } finally {
      h.app.service.setPolicyBook(original);
    }
  };
  const ROWS: Array<[string, (id: string) => string, Outcome[]]> = [
    ['approve', (id) => `approve ${id}`, ['not_approver', 'not_found', 'not_found', 'not_approver', 'not_approver', 'not_found']],
    ['deny', (id) => `deny ${id} reason "no"`, ['not_approver', 'not_found', 'not_found', 'not_approver', 'not_approver', 'not_found']],
    ['status', (id) => `status ${id}`, ['allowed', 'not_found', 'not_found', 'allowed', 'allowed', 'not_found']],
  ];
  for (const [action, command, expected] of ROWS) {
    it(`${action} alice's request: ${P.map((p, i) => `${p.split('@')[0]}=${expected[i]}`).join(' ')}`, async () => {
      const got: Outcome[] = [];
      for (const who of P) {
        const id = await pending();
        got.push(refused(await reduced(() => run(who, command(id)))));
        const after = await h.app.service.get(id);
        // Nothing changed for a refusal: still pending, no decision recorded.
        if (got.at(-1) !== 'allowed') expect(after).toMatchObject({ status: 'pending', decisions: [] });
        await run('dave@contoso.com', `revoke ${id}`);
      }
      expect(got).toEqual(expected);
    });
  }

  it('nobody is asked to approve: the approvers named without the role are not notified as approvers', async () => {
    const reply = await reduced(() => run('alice@contoso.com', 'rdp vm1 1h from 203.0.113.40'));
    expect(reply).toMatchObject({ kind: 'pending_approval', approvers: [] });
    await run('dave@contoso.com', `revoke ${requestOf(reply).id}`);
  });

  it('carol, left with no role, sees nothing: list, status, vms, audit all empty', async () => {
    const id = await pending();
    await reduced(async () => {
      for (const scope of ['mine', 'all', 'pending', 'active']) expect(await run('carol@contoso.com', `list ${scope}`)).toMatchObject({ kind: 'list', requests: [] });
      expect(refused(await run('carol@contoso.com', `status ${id}`))).toBe('not_found');
      expect(await run('carol@contoso.com', 'vms')).toEqual({ kind: 'inventory', configured: [], notConfigured: [], unsupported: [] });
      expect(await run('carol@contoso.com', 'audit')).toMatchObject({ kind: 'audit', rows: [], truncated: false });
      expect(await run('carol@contoso.com', 'audit vm1')).toMatchObject({ kind: 'audit', rows: [], truncated: false });
    });
    // With the role back, carol sees and decides again.
    expect(refused(await run('carol@contoso.com', `status ${id}`))).toBe('allowed');
    expect(refused(await run('carol@contoso.com', `approve ${id}`))).toBe('allowed');
    await run('dave@contoso.com', `revoke ${id}`);
  });
});

describe('authorization edge cases', () => {
  it('nobody approves their own request (bob is an approver and a requester)', async () => {
    const id = requestOf(await run('bob@contoso.com', 'rdp vm1 1h from 203.0.113.8')).id;
    expect(refused(await run('bob@contoso.com', `approve ${id}`))).toBe('self_approval');
    expect((await h.app.service.get(id))!.status).toBe('pending');
  });

  it('a member of a group that lost the approver role can no longer approve', async () => {
    const id = await pending();
    const book = testBook();
    const original = h.app.service.policyBook();
    h.app.service.setPolicyBook({ ...book, groups: { ...book.groups, oncall: [p('carol@contoso.com')] } });
    try {
      // bob is left with JIT Requester on prod only: he may not even see alice's request.
      expect(refused(await run('bob@contoso.com', `approve ${id}`))).toBe('not_found');
      expect((await h.app.service.get(id))!.status).toBe('pending');
      expect(refused(await run('carol@contoso.com', `approve ${id}`))).toBe('allowed');
    } finally {
      h.app.service.setPolicyBook(original);
    }
  });

  it('a source wider than the policy allows is refused (db1 allows only 203.0.113.0/24)', async () => {
    for (const from of ['0.0.0.0/0', '203.0.0.0/16', '198.51.100.7', '*']) {
      expect(refused(await run('alice@contoso.com', `ssh db1 30m from ${from}`)), from).toBe('source_not_allowed');
    }
    expect(refused(await run('alice@contoso.com', 'ssh db1 30m from 203.0.113.64/26'))).toBe('allowed');
  });
});
