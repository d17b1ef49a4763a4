// The request form's model in memory (the policy book of the tests, the use case stubbed): what a
// person is offered never exceeds their rights or the policy, invalid values never reach the use
// case, and the use case's refusals come back keyed by field. (test/integration/forms-model.test.ts
// runs the same model over the real service and Redis.)
import { describe, expect, it } from 'vitest';
import { RequestForms, accessChoices, fieldErrors, type FormsService } from '../../src/app/forms.js';
import { DEFAULT_SETTINGS } from '../../src/app/service.js';
import type { AccessCommand } from '../../src/core/command.js';
import { parsePolicyText } from '../../src/config/policy-file.js';
import { JitError } from '../../src/core/errors.js';
import { effectivePolicy, type PolicyBook } from '../../src/core/policy.js';
import type { Reply } from '../../src/core/reply.js';
import { PROD, TEST_POLICY_YAML, testBook, vmId } from '../fixtures/book.js';
import { ALICE, BOB, DAVE, p } from '../fixtures/ids.js';

function forms(book: PolicyBook = testBook(), refuse?: JitError) {
  const calls: AccessCommand[] = [];
  const service: FormsService = {
    policyBook: () => book,
    settings: { ...DEFAULT_SETTINGS, minDurationMs: 60_000 },
    requestAccess: async (_actor, cmd) => {
      calls.push(cmd);
      if (refuse) throw refuse;
      return { kind: 'info', message: 'made' } satisfies Reply;
    },
  };
  return { f: new RequestForms(service), calls };
}

describe('request form model', () => {
  it('a person with no role, or no right to request, gets a reason and no form', () => {
    const { f } = forms();
    expect(f.requestForm(p('mallory@contoso.com'), 'p')).toEqual({ ok: false, reason: expect.stringMatching(/no JIT role yet/) });
    expect(f.requestForm(p('erin@contoso.com'), 'p')).toEqual({ ok: false, reason: expect.stringMatching(/read or approve, not request/) });
  });

  it('offers exactly the targets RBAC allows, and per target never more than its policy', () => {
    const { f } = forms();
    const book = testBook();
    for (const who of [ALICE, BOB, DAVE]) {
      const model = f.requestForm(who, 'p');
      if (!model.ok) continue;
      expect(model.targets.map((t) => t.name)).toEqual(f.requestableTargets(who).map((t) => t.name));
      for (const t of model.targets) {
        const policy = effectivePolicy(book, book.targets[t.name]!);
        for (const a of accessChoices(policy)) {
          const sel = f.requestForm(who, 'p', { target: t.name, access: a.id });
          if (!sel.ok || !sel.selected) throw new Error('no selection');
          const max = Math.min(...a.ports.map((p) => policy.ports.find((r) => r.port === p.port)!.maxDurationMs));
          expect(sel.selected.durations.length).toBeGreaterThan(0);
          expect(sel.selected.durations.every((d) => d.ms >= 60_000 && d.ms <= max)).toBe(true);
          expect(sel.selected.durations.map((d) => d.ms)).toContain(sel.selected.defaultDurationMs);
        }
      }
    }
    // bob requests in prod only: dev1 is not offered, and asking for it selects nothing.
    const bob = f.requestForm(p('bob@contoso.com'), 'p', { target: 'dev1' });
    expect(bob.ok && bob.targets.map((t) => t.name)).not.toContain('dev1');
    expect(bob.ok && bob.selected).toBeUndefined();
  });

  it('without PUBLIC_URL no "my IP" option; typed sources show what is allowed', () => {
    const { f } = forms();
    const m = f.requestForm(p('alice@contoso.com'), 'p', { target: 'dev1', access: 'port:8443/tcp' });
    if (!m.ok) throw new Error(m.reason);
    expect(m.selected!.sources).toEqual([{ kind: 'typed', label: expect.any(String), allowed: '198.51.100.0/24, 2001:db8::/32' }]);
  });

  it('invalid values come back keyed by field, all at once, and never reach the use case', async () => {
    const { f, calls } = forms();
    const r = await f.submitForm(p('alice@contoso.com'), 'p', { target: 'vm1', access: 'port:99999/tcp', duration: 'soon', source: 'nowhere', justification: 'x'.repeat(501), start: 'y'.repeat(41) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(Object.keys(r.errors).sort()).toEqual(['access', 'duration', 'justification', 'source', 'start']);
    const theirs = await f.submitForm(p('bob@contoso.com'), 'p', { target: 'dev1', access: 'ssh', duration: '1h' });
    expect(theirs).toEqual({ ok: false, errors: { target: expect.stringMatching(/no JIT Requester role covering dev1/) } });
    const long = await f.submitForm(p('alice@contoso.com'), 'p', { target: 'db1', access: 'ssh', duration: '2h' });
    expect(long).toEqual({ ok: false, errors: { duration: expect.stringMatching(/at most 1h/) } });
    const myip = await f.submitForm(p('alice@contoso.com'), 'p', { target: 'vm1', access: 'rdp', duration: '1h', source: 'myip' });
    expect(myip).toEqual({ ok: false, errors: { source: expect.stringMatching(/PUBLIC_URL/) } });
    expect(calls).toEqual([]);
  });

  it('a valid form is the typed command; the use case’s refusals come back by field', async () => {
    const { f, calls } = forms();
    const r = await f.submitForm(p('alice@contoso.com'), 'p', { target: 'VM1', access: 'rdp', duration: '5400000', source: '203.0.113.7', justification: ' INC-1 ', start: String(Date.UTC(2030, 0, 1, 9)) });
    expect(r).toEqual({ ok: true, reply: { kind: 'info', message: 'made' } });
    expect(calls).toEqual([{ kind: 'access', verb: 'rdp', ports: [{ port: 3389, protocol: 'tcp' }], target: 'vm1', durationMs: 5_400_000, source: '203.0.113.7', justification: 'INC-1', startAt: '2030-01-01T09:00:00.000Z' }]);
    const refused = forms(testBook(), new JitError('source_not_allowed', '203.0.113.7 is not allowed'));
    expect(await refused.f.submitForm(p('alice@contoso.com'), 'p', { target: 'vm1', access: 'rdp', duration: '1h', source: '203.0.113.7' })).toEqual({ ok: false, errors: { source: '203.0.113.7 is not allowed' } });
    expect(fieldErrors(new JitError('rate_limited', 'too many requests'), false)).toEqual({ form: 'too many requests' });
    expect(fieldErrors(new JitError('bad_justification', 'no ticket'), true)).toEqual({ justification: 'no ticket' });
  });

  it('1,000 targets: all offered, sorted, typeahead on; search caps at 100, prefix matches first', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `t${String(999 - i).padStart(3, '0')}`);
    const book = parsePolicyText(TEST_POLICY_YAML.replace('targets:\n', `targets:\n${names.map((n) => `  ${n}: { id: ${vmId(PROD, n)}, os: linux }\n`).join('')}`), 'big.yaml');
    const { f } = forms(book);
    const m = f.requestForm(p('alice@contoso.com'), 'p');
    if (!m.ok) throw new Error(m.reason);
    expect(m.count).toBe(1005);
    expect(m.typeahead).toBe(true);
    const got = m.targets.map((t) => t.name);
    expect(got).toEqual([...got].sort());
    expect(f.searchTargets(p('alice@contoso.com'), 't')).toHaveLength(100);
    expect(f.searchTargets(p('alice@contoso.com'), '99').slice(0, 10).map((t) => t.name)).toEqual(['t099', 't199', 't299', 't399', 't499', 't599', 't699', 't799', 't899', 't990']);
  });
});
