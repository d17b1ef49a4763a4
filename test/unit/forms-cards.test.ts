// The request form and the home card (Teams, the local console) against Microsoft's official
// Adaptive Card 1.5 schema and the adaptivecards SDK, within Teams' ~28 KB message budget, with
// generated hostile input and with 1,000 targets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HomeModel } from '../../src/app/home.js';
import type { CardJson } from '../../src/adapters/teams/cards.js';
import { FORM_TARGETS_SHOWN, FORM_VERBS, formCard, homeCard, nothingToRequestCard, type FormCardData } from '../../src/adapters/teams/forms.js';
import { connections, request, userText } from '../fixtures/arbitraries.js';
import { cardBytes, cardProblems, TEAMS_CARD_BUDGET_BYTES } from '../fixtures/adaptive-card-schema.js';
import { p } from '../fixtures/ids.js';

const CPU_BOUND_MS = 120_000;
const RUNS = Math.min(Number(process.env.FUZZ_RUNS ?? 50), 1000);

const valid = (card: CardJson) => {
  expect(cardProblems(card)).toEqual([]);
  expect(cardBytes(card)).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
};

/** Every element of a card, depth first. */
function elements(node: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(node)) return node.flatMap(elements);
  if (!node || typeof node !== 'object') return [];
  const o = node as Record<string, unknown>;
  return [o, ...Object.values(o).flatMap(elements)];
}
const byId = (card: CardJson, id: string) => elements(card).find((e) => e.id === id);

const targets = (n: number) => Array.from({ length: n }, (_, i) => ({ value: `web-${String(i).padStart(4, '0')}-westeurope-production`, title: `web-${String(i).padStart(4, '0')}-westeurope-production (linux)` }));
const base = (n: number): FormCardData => ({
  targets: targets(n),
  targetTotal: n,
  access: [{ value: 'ssh', title: 'SSH (22/tcp)' }, { value: 'port:8443/tcp', title: '8443/tcp' }],
  durations: ['30m', '1h', '2h', '3h'].map((d) => ({ value: d, title: d })),
  justification: { hint: 'A ticket, e.g. INC-1234', required: true, pattern: '^(INC|CHG)-\\d+' },
  sourceHint: 'e.g. 203.0.113.7; empty: the my-IP link',
  values: {},
  errors: {},
});

describe('the request form card', { timeout: CPU_BOUND_MS }, () => {
  it('has the inputs of the issue: choice sets, the justification with the policy hint and pattern, source, date and time; submitted by Action.Execute', () => {
    const c = formCard(base(3));
    valid(c);
    expect(byId(c, 'target')).toMatchObject({ type: 'Input.ChoiceSet', isRequired: true, value: targets(3)[0]!.value });
    expect(byId(c, 'access')).toMatchObject({ type: 'Input.ChoiceSet' });
    expect(byId(c, 'duration')).toMatchObject({ type: 'Input.ChoiceSet' });
    expect(byId(c, 'justification')).toMatchObject({ type: 'Input.Text', placeholder: 'A ticket, e.g. INC-1234', regex: '^(INC|CHG)-\\d+' });
    expect(byId(c, 'source')).toMatchObject({ type: 'Input.Text' });
    expect(byId(c, 'startDate')).toMatchObject({ type: 'Input.Date' });
    expect(byId(c, 'startTime')).toMatchObject({ type: 'Input.Time' });
    expect((c.actions as CardJson[])[0]).toMatchObject({ type: 'Action.Execute', verb: FORM_VERBS.submit });
    expect(elements(c).some((e) => e.type === 'Action.Execute' && e.verb === FORM_VERBS.choices)).toBe(true);
    expect(byId(c, 'filter')).toBeUndefined();
  });

  it('errors show beside their fields, and the values typed are kept', () => {
    const c = formCard({ ...base(3), values: { target: targets(3)[2]!.value, justification: 'because', source: '300.1.1.1' }, errors: { justification: 'must match ^(INC|CHG)-\\d+', source: 'not an IP address' } });
    valid(c);
    const body = c.body as CardJson[];
    const at = (id: string) => body.findIndex((e) => e.id === id);
    expect(body[at('justification') + 1]).toMatchObject({ id: 'justificationError', color: 'Attention' });
    expect(body[at('source') + 1]).toMatchObject({ id: 'sourceError', color: 'Attention' });
    expect(byId(c, 'justification')?.value).toBe('because');
    expect(byId(c, 'target')?.value).toBe(targets(3)[2]!.value);
    expect(JSON.stringify(c)).toContain('fix the fields marked below');
  });

  it('1,000 targets: at most 100 choices, a find input, the chosen one kept, within the budget and schema-valid', () => {
    const all = base(1000);
    const c = formCard(all);
    valid(c);
    expect((byId(c, 'target')!.choices as unknown[]).length).toBe(FORM_TARGETS_SHOWN);
    expect(byId(c, 'filter')).toMatchObject({ type: 'Input.Text' });
    // A search that matches nothing still renders a valid card.
    valid(formCard({ ...all, targets: [], filter: 'zzz', values: { filter: 'zzz' } }));
  });

  it('hostile text everywhere stays valid and within budget', () => {
    fc.assert(
      fc.property(userText(300), userText(500), userText(80), fc.array(fc.tuple(userText(100, 1), userText(100, 1)), { maxLength: 150 }), (hint, typed, filter, ts) => {
        const f = base(0);
        valid(formCard({ ...f, targets: ts.map(([value, title]) => ({ value, title })), targetTotal: ts.length, filter, justification: { hint, required: false }, values: { justification: typed, filter }, errors: { justification: typed, form: hint } }));
      }),
      { numRuns: RUNS },
    );
  });

  it('why a search box and an update button: the official 1.5 schema rejects the filtered style, Data.Query and valueChangedAction', () => {
    const choiceSet = (extra: Record<string, unknown>) => ({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'Input.ChoiceSet', id: 't', choices: [{ title: 'a', value: 'a' }], ...extra }] });
    expect(cardProblems(choiceSet({ style: 'compact' }))).toEqual([]);
    expect(cardProblems(choiceSet({ style: 'filtered' })).join()).toMatch(/schema: .*style/);
    expect(cardProblems(choiceSet({ 'choices.data': { type: 'Data.Query', dataset: 'targets' } })).join()).toMatch(/schema: .*additional/);
    expect(cardProblems(choiceSet({ valueChangedAction: { type: 'Action.ResetInputs', targetInputIds: ['x'] } })).join()).toMatch(/schema: .*additional/);
  });

  it('nothing to request: a message card, no inputs', () => {
    const c = nothingToRequestCard('No policy lets you request access.');
    valid(c);
    expect(elements(c).some((e) => String(e.type).startsWith('Input.'))).toBe(false);
  });
});

describe('the home card', { timeout: CPU_BOUND_MS }, () => {
  const section = <T>(items: T[], more = 0) => ({ items, more });
  it('any requests, grants and approvals: schema-valid, within budget, refreshed by the jitHome verb for its owner', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ request, withdrawable: fc.boolean() }), { maxLength: 20 }),
        fc.array(fc.record({ request, connections, extendOptionsMs: fc.array(fc.integer({ min: 60_000, max: 86_400_000 }), { maxLength: 6 }), timeLeftMs: fc.nat(), closable: fc.boolean() }), { maxLength: 20 }),
        fc.array(fc.record({ request, scope: fc.constantFrom('request' as const, 'extension' as const) }), { maxLength: 20 }),
        fc.array(request, { maxLength: 20 }),
        fc.nat({ max: 5000 }),
        userText(300),
        (pending, active, approvals, history, more, note) => {
          const model: HomeModel = {
            principal: p('alice@contoso.com'),
            at: 1_800_000_000_000,
            pending: section(pending, more),
            active: section(active.map((g) => ({ ...g, expiresAt: g.request.expiresAt ?? 0, extensionPending: false }))),
            approvals: section(approvals.map((a) => ({ ...a, quorum: 1, escalatedTo: [], deciders: [p('alice@contoso.com')] }))),
            history: section(history, more),
          };
          const c = homeCard({ model, refreshUserIds: ['29:1alice'], note });
          valid(c);
          expect(c.refresh).toMatchObject({ action: { type: 'Action.Execute', verb: FORM_VERBS.home }, userIds: ['29:1alice'] });
        },
      ),
      { numRuns: RUNS },
    );
  });
});
