// The Slack form and App Home stay within Block Kit's limits at their largest (checked by the
// independent checker in test/fakes/block-kit.ts): 1,000 VMs, a policy with 150 ports, the longest
// names, and a person with dozens of requests in every section of the home.
import { describe, expect, it } from 'vitest';
import type { RequestFormModel } from '../../src/app/forms.js';
import type { HomeModel } from '../../src/app/home.js';
import { ACTIONS } from '../../src/adapters/slack/blocks.js';
import { HOME_SHOWN, blockId, homeView, requestModal, slackErrors, targetValue } from '../../src/adapters/slack/views.js';
import type { AccessRequest } from '../../src/core/types.js';
import { blockKitProblems, viewProblems } from '../fakes/block-kit.js';
import { p, rid, tn } from '../fixtures/ids.js';

const LONG = `v${'m'.repeat(79)}`; // 80 characters: the longest target name the policy file takes
const NOW = 1_767_000_000_000;

const req = (i: number, more: Partial<AccessRequest> = {}): AccessRequest => ({
  id: rid(`r${String(i).padStart(9, '0')}`),
  requester: p(`someone.with.a.rather.long.name.${i}@contoso.example.com`),
  target: tn(`${LONG.slice(0, 70)}${i}`),
  targetId: `/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm${i}`,
  ports: Array.from({ length: 10 }, (_, p) => ({ port: 10_000 + p, protocol: 'tcp' as const })),
  source: '2001:db8:1234:5678::/64',
  durationMs: 3600_000,
  justification: `<!channel> & ${'x'.repeat(480)}`,
  status: 'pending',
  decisions: [],
  createdAt: NOW - i * 1000,
  updatedAt: NOW - i * 1000,
  approvalExpiresAt: NOW + 3600_000,
  rules: [],
  origin: { via: 'slack' },
  version: 1,
  ...more,
});

function bigHome(n: number): HomeModel {
  const many = <T>(f: (i: number) => T) => ({ items: Array.from({ length: n }, (_, i) => f(i)), more: 7 });
  return {
    principal: p('alice@contoso.com'),
    at: NOW,
    pending: many((i) => ({ request: req(i, { startAt: NOW + 3600_000 }), withdrawable: true })),
    active: many((i) => ({
      request: req(100 + i, { status: 'active', activatedAt: NOW, expiresAt: NOW + 3600_000 }),
      expiresAt: NOW + 3600_000,
      timeLeftMs: 3600_000,
      connections: Array.from({ length: 10 }, (_, p) => ({ host: `${LONG}.contoso.example`, port: 10_000 + p, command: `${LONG}.contoso.example:${10_000 + p}` })),
      extendOptionsMs: Array.from({ length: 40 }, (_, k) => (k + 1) * 60_000),
      extensionPending: i % 2 === 0,
      closable: true,
    })),
    approvals: many((i) => ({ request: req(200 + i), scope: i % 2 ? ('extension' as const) : ('request' as const), quorum: 3, escalatedTo: [], deciders: [p('alice@contoso.com')], viewer: { principal: p('alice@contoso.com'), canDecide: true } })),
    history: many((i) => req(300 + i, { status: 'revoked' })),
  };
}

describe('App Home within Block Kit limits', () => {
  it('dozens of entries per section: at most 100 blocks, every limit kept, the rest counted', () => {
    const view = homeView(bigHome(60));
    expect(viewProblems(view)).toEqual([]);
    expect(blockKitProblems(view.blocks, 'home')).toEqual([]);
    expect(view.blocks.length).toBeLessThanOrEqual(100);
    const text = JSON.stringify(view.blocks);
    expect(text).toContain(`…and ${60 - HOME_SHOWN.pending + 7} more waiting`);
    expect(text).not.toContain('<!channel>');
    // The buttons are the cards' own: the same handlers run.
    const ids = (view.blocks as Array<{ elements?: Array<{ action_id?: string }>; accessory?: { action_id?: string } }>).flatMap((b) => b.elements ?? (b.accessory ? [b.accessory] : [])).map((e) => e.action_id);
    for (const a of [ACTIONS.revoke, ACTIONS.approve, ACTIONS.deny, ACTIONS.extApprove, ACTIONS.extDeny, `${ACTIONS.extend}_60000`]) expect(ids).toContain(a);
  });

  it('an empty home, and one for someone who may request nothing, say so', () => {
    const empty: HomeModel = { principal: p('x@contoso.com'), at: NOW, pending: { items: [], more: 0 }, active: { items: [], more: 0 }, approvals: { items: [], more: 0 }, history: { items: [], more: 0 } };
    const view = homeView(empty, 'you have no JIT role yet');
    expect(viewProblems(view)).toEqual([]);
    expect(JSON.stringify(view.blocks)).toContain('no JIT role yet');
    expect(JSON.stringify(view.blocks)).not.toContain('jit_form_open');
  });
});

describe('the request modal within Block Kit limits', () => {
  const targets = Array.from({ length: 1000 }, (_, i) => ({ name: `${LONG.slice(0, 76)}${String(i).padStart(4, '0')}`, os: 'linux' as const }));
  const selected = {
    target: targets[999]!,
    access: Array.from({ length: 150 }, (_, p) => ({ id: `port:${20_000 + p}/tcp`, label: `Port ${20_000 + p}/tcp`, ports: [{ port: 20_000 + p, protocol: 'tcp' as const }], maxDurationMs: 3600_000 })),
    selectedAccess: 'port:20149/tcp',
    durations: Array.from({ length: 150 }, (_, k) => ({ ms: (k + 1) * 60_000, label: `${k + 1}m` })),
    defaultDurationMs: 3600_000,
    sources: [{ kind: 'myip' as const, label: 'My IP' }, { kind: 'typed' as const, label: 'typed', allowed: Array.from({ length: 300 }, (_, i) => `198.51.${i % 256}.0/24`).join(', ') }],
    justification: { required: true, hint: 'h'.repeat(400), pattern: `^(${'A|'.repeat(500)}B)`, maxLength: 500 },
    start: { allowed: true, maxAheadMs: 7 * 86_400_000, timeZone: 'Europe/Berlin' },
    approvalRequired: true,
  };

  it('1,000 VMs (typeahead), 150 ports, the longest names and rules: a valid view', () => {
    const model: Extract<RequestFormModel, { ok: true }> = { ok: true, targets, count: 1000, typeahead: true, selected };
    const view = requestModal(model, { rev: 3, timeZone: 'Europe/Berlin' });
    expect(viewProblems(view)).toEqual([]);
    expect(view.blocks.find((b) => b.block_id === 'target')).toMatchObject({ element: { type: 'external_select', initial_option: { value: targetValue(targets[999]!.name) } } });
  });

  it('up to 100 VMs: a plain list; without a VM chosen, only the VM field', () => {
    const model: Extract<RequestFormModel, { ok: true }> = { ok: true, targets: targets.slice(0, 100), count: 100, typeahead: false };
    const view = requestModal(model, { rev: 0 });
    expect(viewProblems(view)).toEqual([]);
    expect(view.blocks.filter((b) => b.type === 'input')).toHaveLength(1);
    expect(new Set(targets.map((t) => targetValue(t.name))).size).toBe(targets.length);
  });

  it('errors go to the block of their field (a refusal of no field to the VM)', () => {
    expect(slackErrors({ duration: 'too long', source: 'no', form: 'slow down', target: 'unknown' }, 2, false, true)).toEqual({
      [blockId('duration', 2)]: 'too long',
      [blockId('source', 2)]: 'no',
      target: 'slow down; unknown',
    });
    expect(slackErrors({ source: 'bad' }, 2, true, true)).toEqual({ [blockId('source_text', 2)]: 'bad' });
  });
});
