// The request form and the home view as Adaptive Cards (Teams and the local console), built from
// the platform-neutral form and home models. Everything stays within the official Adaptive Card
// 1.5 schema: it has no `valueChangedAction`, no `Data.Query` (`choices.data`) and no `filtered`
// ChoiceSet style, so a changed target refreshes its dependent choices with an Action.Execute
// button, and past FORM_TARGETS_SHOWN targets a "find" text input narrows the list on the server.
import { formatDuration } from '../../core/duration.js';
import { isoSeconds } from '../../core/format.js';
import { portsOf, sourceOf } from '../../core/messages.js';
import type { HomeModel } from '../../app/home.js';
import type { AccessRequest } from '../../core/types.js';
import { VERBS } from '../chat/verbs.js';
import { CARD_BUDGET_BYTES, mdEsc, type CardJson } from './cards.js';

/** The verbs of the form and home cards (Action.Execute), beside the approval cards' VERBS. */
export const FORM_VERBS = {
  /** Open the form (the home card's "Request access"). */
  open: 'jitForm',
  /** Re-render the form for the chosen target (its access and duration choices), or the "find" filter. */
  choices: 'jitFormChoices',
  /** Submit the form. */
  submit: 'jitRequest',
  /** Show / refresh the home card (the card's `refresh` action too). */
  home: 'jitHome',
} as const;

/** At most this many targets are choices of one form; past that the "find" input narrows them. */
export const FORM_TARGETS_SHOWN = 100;

export interface Choice {
  value: string;
  title: string;
}

/** What the form shows (the model's form, its values and errors, adapted to the card). */
export interface FormCardData {
  /** Targets the user may request, already narrowed by `filter` (at most FORM_TARGETS_SHOWN are shown). */
  targets: Choice[];
  /** How many targets the user may request in all (the "find" input appears past FORM_TARGETS_SHOWN). */
  targetTotal: number;
  filter?: string;
  access: Choice[];
  durations: Choice[];
  justification: { hint: string; required: boolean; pattern?: string };
  sourceHint: string;
  /** Field id → value the form is shown with (target, access, duration, justification, source, startDate, startTime, filter). */
  values: Record<string, string>;
  /** Field id → what is wrong with it; `form` for what is about no one field. */
  errors: Record<string, string>;
  /** A line above the fields (e.g. "Choices updated for vm2"). */
  note?: string;
}

const text = (t: string, extra: Record<string, unknown> = {}): CardJson => ({ type: 'TextBlock', text: t, wrap: true, ...extra });
const errorLine = (id: string, msg: string): CardJson => ({ type: 'TextBlock', id: `${id}Error`, text: `✗ ${mdEsc(msg)}`, wrap: true, color: 'Attention', size: 'Small', spacing: 'None' });
const card = (body: CardJson[], actions: CardJson[] = [], extra: Record<string, unknown> = {}): CardJson => ({
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
  type: 'AdaptiveCard',
  version: '1.5',
  ...extra,
  body,
  ...(actions.length ? { actions } : {}),
});
const bytes = (c: CardJson) => Buffer.byteLength(JSON.stringify(c), 'utf8');
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
/** A choice set's initial value: the given one if it is a choice, else the first choice. */
/** What a stand-in choice submits (a choice needs a non-empty value): read as "nothing chosen". */
export const NO_CHOICE = '-';
/** A ChoiceSet needs at least one choice (the SDK refuses an empty one): a stand-in that submits NO_CHOICE. */
const some = (choices: Choice[], none: string): Choice[] => (choices.length ? choices : [{ title: none, value: NO_CHOICE }]);
const pick = (choices: Choice[], v: string | undefined) => (v !== undefined && choices.some((c) => c.value === v) ? v : choices[0]?.value ?? '');

/** The request form: targets (the user's rights), access, duration, justification, source, start. */
export function formCard(f: FormCardData): CardJson {
  const v = f.values;
  const err = (id: string) => (f.errors[id] ? [errorLine(id, f.errors[id]!)] : []);
  const body: CardJson[] = [text('Request access', { weight: 'Bolder', size: 'Medium' })];
  if (f.note) body.push(text(mdEsc(f.note), { isSubtle: true, size: 'Small', spacing: 'None' }));
  if (f.errors.form) body.push(text(`✗ ${mdEsc(f.errors.form)}`, { color: 'Attention' }));
  else if (Object.keys(f.errors).length) body.push(text('✗ Not sent: fix the fields marked below.', { color: 'Attention' }));

  const shown = f.targets.slice(0, FORM_TARGETS_SHOWN);
  if (f.targetTotal > FORM_TARGETS_SHOWN) {
    body.push({
      type: 'Input.Text',
      id: 'filter',
      label: `Find a target (${f.targetTotal} in all; the list shows up to ${FORM_TARGETS_SHOWN})`,
      placeholder: 'part of a name, e.g. web-1',
      maxLength: 80,
      value: v.filter ?? f.filter ?? '',
    });
    const matches = f.filter ? `${f.targets.length} match "${mdEsc(clip(f.filter, 80))}"` : `first ${shown.length} shown`;
    body.push(text(`${matches}; type part of a name and press Find.`, { isSubtle: true, size: 'Small', spacing: 'None' }));
  }
  body.push({
    type: 'Input.ChoiceSet',
    id: 'target',
    label: 'Target',
    style: 'compact',
    isRequired: true,
    errorMessage: 'Choose a target',
    choices: some(shown.map((c) => ({ title: clip(c.title, 120), value: c.value })), '(no target matches: change the search)'),
    value: pick(shown, v.target),
  });
  body.push(...err('target'));
  body.push({
    type: 'ActionSet',
    spacing: 'Small',
    actions: [
      { type: 'Action.Execute', title: f.targetTotal > FORM_TARGETS_SHOWN ? 'Find / update choices' : 'Update choices for this target', verb: FORM_VERBS.choices, data: { form: 'request' } },
    ],
  });
  body.push({ type: 'Input.ChoiceSet', id: 'access', label: 'Access', style: 'compact', isRequired: true, errorMessage: 'Choose the access', choices: some(f.access, '(choose a target first)'), value: pick(f.access, v.access) });
  body.push(...err('access'));
  body.push({ type: 'Input.ChoiceSet', id: 'duration', label: 'For how long', style: 'compact', isRequired: true, errorMessage: 'Choose a duration', choices: some(f.durations, '(choose a target first)'), value: pick(f.durations, v.duration) });
  body.push(...err('duration'));
  const j = f.justification;
  // Not isRequired: Teams checks every input before any Action.Execute, so a required empty
  // justification would block the "update choices" button; the server answers it beside the field.
  body.push({
    type: 'Input.Text',
    id: 'justification',
    label: j.required ? 'Justification (required)' : 'Justification (optional)',
    placeholder: clip(j.hint, 200),
    isMultiline: true,
    maxLength: 500,
    ...(j.pattern ? { regex: j.pattern, errorMessage: clip(`Must match ${j.pattern}${j.hint ? `: ${j.hint}` : ''}`, 300) } : {}),
    value: v.justification ?? '',
  });
  body.push(...err('justification'));
  body.push({ type: 'Input.Text', id: 'source', label: 'From (your address or range)', placeholder: clip(f.sourceHint, 200), maxLength: 64, value: v.source ?? '' });
  body.push(...err('source'));
  body.push({
    type: 'ColumnSet',
    columns: [
      { type: 'Column', width: 'stretch', items: [{ type: 'Input.Date', id: 'startDate', label: 'Start (empty: now)', value: v.startDate ?? '' }] },
      { type: 'Column', width: 'stretch', items: [{ type: 'Input.Time', id: 'startTime', label: 'at', value: v.startTime ?? '' }] },
    ],
  });
  body.push(...err('start'));
  return card(body, [{ type: 'Action.Execute', title: 'Request', verb: FORM_VERBS.submit, style: 'positive', data: { form: 'request' } }]);
}

/** Someone who may request nothing: said plainly, no empty form. */
export function nothingToRequestCard(message: string): CardJson {
  return card([text('Nothing you can request', { weight: 'Bolder', size: 'Medium', color: 'Warning' }), text(mdEsc(message))]);
}

// ------------------------------------------------------------------ home

/** The home model (app/home.ts) with what the card adds: who refreshes it, and what the last click did. */
export interface HomeCardData {
  model: HomeModel;
  /** Teams user ids (29:…) whose clients refresh the card (its owner). */
  refreshUserIds: string[];
  /** A line on top: what the last click did (✗ … when refused). */
  note?: string;
}

const iso = (ms: number | undefined) => (ms ? isoSeconds(ms) : '-');
const left = (ms: number) => (ms <= 0 ? 'closing' : `${formatDuration(Math.max(60_000, Math.floor(ms / 60_000) * 60_000))} left`);
const HOME_DATA = { home: true } as const;
const buttons = (actions: CardJson[]): CardJson => ({ type: 'ActionSet', spacing: 'Small', actions: actions.slice(0, 5) });
const exec = (title: string, verb: string, data: Record<string, unknown>, style?: string): CardJson => ({ type: 'Action.Execute', title, verb, data: { ...data, ...HOME_DATA }, ...(style ? { style } : {}) });
const heading = (t: string, n: number): CardJson => text(`**${t}** (${n})`, { separator: true, spacing: 'Medium' });
const reqLine = (r: AccessRequest) => `**${mdEsc(r.target)}** · ${mdEsc(portsOf(r))} · ${formatDuration(r.durationMs)} · from ${mdEsc(sourceOf(r))} · ${r.id}`;

/** Items of each section, first to drop when the card would be too big: history, then the others. */
interface Sections {
  pending: number;
  active: number;
  approvals: number;
  history: number;
}

function homeBody(d: HomeCardData, n: Sections): CardJson[] {
  const h = d.model;
  const body: CardJson[] = [
    text(`jit-bot · ${mdEsc(h.principal)}`, { weight: 'Bolder', size: 'Medium' }),
    text(`As of ${iso(h.at)}. Updates itself when your requests change.`, { isSubtle: true, size: 'Small', spacing: 'None' }),
  ];
  if (d.note) body.push(text(mdEsc(clip(d.note, 600)), { color: d.note.startsWith('✗') ? 'Attention' : 'Good' }));
  const more = (shown: number, all: number, how: string) => (all > shown ? [text(`…and ${all - shown} more; ${how}`, { isSubtle: true, size: 'Small' })] : []);
  const count = <T>(s: { items: T[]; more: number }) => s.items.length + s.more;

  body.push(heading('My pending requests', count(h.pending)));
  if (!count(h.pending)) body.push(text('None.', { isSubtle: true, spacing: 'None' }));
  for (const { request: r, withdrawable } of h.pending.items.slice(0, n.pending)) {
    body.push(text(reqLine(r), { spacing: 'Small' }));
    const state = r.status === 'awaiting_source' ? 'Waiting for your address (the my-IP link).' : r.status === 'approved' ? `Approved; opens ${iso(r.startAt)}.` : `Waiting for approval; the offer expires ${iso(r.approvalExpiresAt)}.`;
    body.push(text(state, { isSubtle: true, size: 'Small', spacing: 'None' }));
    if (withdrawable) body.push(buttons([exec('Withdraw', VERBS.revoke, { requestId: r.id }, 'destructive')]));
  }
  body.push(...more(Math.min(n.pending, h.pending.items.length), count(h.pending), 'jit list mine shows them all'));

  body.push(heading('My open access', count(h.active)));
  if (!count(h.active)) body.push(text('None.', { isSubtle: true, spacing: 'None' }));
  for (const g of h.active.items.slice(0, n.active)) {
    const r = g.request;
    body.push(text(`🔓 ${reqLine(r)}`, { spacing: 'Small', color: 'Good' }));
    body.push(text(`${left(g.timeLeftMs)} (until ${iso(g.expiresAt)})${r.pendingExtension ? `; an extension of ${formatDuration(r.pendingExtension.addMs)} waits for approval` : ''}`, { size: 'Small', spacing: 'None' }));
    for (const c of g.connections.slice(0, 4)) body.push(text(mdEsc(clip(c.command, 300)), { fontType: 'Monospace', size: 'Small', spacing: 'None' }));
    const ext = [...new Set(g.extendOptionsMs)].slice(0, 3).map((ms) => exec(`Extend +${formatDuration(ms)}`, VERBS.extend, { requestId: r.id, addMs: ms }));
    body.push(buttons([...ext, ...(g.closable ? [exec('Close now', VERBS.revoke, { requestId: r.id }, 'destructive')] : [])]));
  }
  body.push(...more(Math.min(n.active, h.active.items.length), count(h.active), 'jit list active shows them all'));

  body.push(heading('Waiting for my approval', count(h.approvals)));
  if (!count(h.approvals)) body.push(text('None.', { isSubtle: true, spacing: 'None' }));
  for (const { request: r, scope } of h.approvals.items.slice(0, n.approvals)) {
    const ext = scope === 'extension';
    body.push(text(`${ext ? `Extension (+${formatDuration(r.pendingExtension?.addMs ?? 0)}) · ` : ''}${mdEsc(r.requester)} → ${reqLine(r)}`, { spacing: 'Small' }));
    body.push(text(`Why: ${r.justification ? mdEsc(clip(r.justification, 300)) : 'none given'}`, { isSubtle: true, size: 'Small', spacing: 'None' }));
    body.push(
      buttons([
        exec(ext ? 'Approve extension' : 'Approve', ext ? VERBS.extApprove : VERBS.approve, { requestId: r.id }, 'positive'),
        exec('Deny', ext ? VERBS.extDeny : VERBS.deny, { requestId: r.id }, 'destructive'),
      ]),
    );
  }
  body.push(...more(Math.min(n.approvals, h.approvals.items.length), count(h.approvals), 'jit list pending shows them all'));

  body.push(heading('My last 7 days', count(h.history)));
  if (!count(h.history)) body.push(text('Nothing ended in the last 7 days.', { isSubtle: true, spacing: 'None' }));
  const hist = h.history.items.slice(0, n.history);
  if (hist.length) {
    body.push({
      type: 'Container',
      spacing: 'Small',
      items: hist.map((r) => text(`${iso(r.updatedAt).slice(0, 16)} · ${r.status.replace('_', ' ')} · ${mdEsc(r.target)} · ${mdEsc(portsOf(r))} · ${r.id}`, { size: 'Small', spacing: 'None' })),
    });
  }
  body.push(...more(hist.length, count(h.history), 'jit list mine shows them all'));
  return body;
}

/** The home card; sections are shortened (history first) until it fits the Teams budget. */
export function homeCard(h: HomeCardData): CardJson {
  const refresh = { action: { type: 'Action.Execute', title: 'Refresh', verb: FORM_VERBS.home, data: { home: true } }, userIds: h.refreshUserIds.slice(0, 60) };
  const build = (n: Sections) =>
    card(homeBody(h, n), [{ type: 'Action.Execute', title: 'Request access', verb: FORM_VERBS.open, style: 'positive', data: { home: true } }, { type: 'Action.Execute', title: 'Refresh', verb: FORM_VERBS.home, data: { home: true } }], {
      ...(h.refreshUserIds.length ? { refresh } : {}),
    });
  const n: Sections = { pending: 10, active: 10, approvals: 10, history: 20 };
  let c = build(n);
  // Shrink the longest sections until the card fits (each step drops at least one line).
  for (let guard = 0; bytes(c) > CARD_BUDGET_BYTES && guard < 100; guard++) {
    const key = (['history', 'approvals', 'pending', 'active'] as const).find((k) => n[k] > 2) ?? 'history';
    n[key] = Math.max(0, n[key] - (n[key] > 2 ? Math.ceil(n[key] / 2) : 1));
    c = build(n);
  }
  return c;
}
