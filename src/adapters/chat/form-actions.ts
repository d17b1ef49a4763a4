// The request form and the home view as Adaptive Cards, for every host of those cards (Teams
// invokes, the local console): the clicks of the form (update choices, submit) and of the home
// card. The home card's Approve / Deny / Withdraw / Close / Extend buttons run the very handler the
// approval cards run (runCardAction), then answer the home card again with what the click did.
// The clicker is always the host's authenticated principal, never a value in the card's data.
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import type { FormValues, SelectedTargetForm, TargetChoice } from '../../app/forms.js';
import { renderText, type Reply } from '../../core/reply.js';
import type { PrincipalId } from '../../core/types.js';
import { replyCard, type CardJson } from '../teams/cards.js';
import { FORM_TARGETS_SHOWN, FORM_VERBS, NO_CHOICE, formCard, homeCard, nothingToRequestCard, type Choice, type FormCardData } from '../teams/forms.js';
import { runCardAction, type CardView } from './card-actions.js';
import { VERBS } from './verbs.js';

export { FORM_VERBS };

/** Where a card host is: its platform name (the origin of requests), the clicker's time zone. */
export interface FormHost {
  service: JitService;
  views: ChatViews;
  platform: string;
  /** Renders an approval card for a viewer (what runCardAction answers on the approval cards). */
  view: CardView;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Teams user ids (29:…) that refresh a principal's home card; none for the console. */
  refreshUserIds?: (principal: PrincipalId) => Promise<string[]>;
}

/**
 * A click's answer: a card that replaces the clicked one, or a message (the card stays). `created`:
 * the form made a request (its reply); `form`: the form to show as a new message (the home card's
 * "Request access", which leaves the home card in place); `note`: what a home card click did (shown on top).
 */
export type FormActionResult = { kind: 'card'; card: CardJson; created?: Reply; form?: CardJson; note?: string } | { kind: 'message'; text: string };

/** The form's input ids, as Action.Execute sends them back (merged into the data). */
const INPUTS = ['target', 'access', 'duration', 'justification', 'source', 'startDate', 'startTime', 'filter'] as const;

/** The card inputs a click carries: strings only, each cut to a sane length. */
function inputsOf(data: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of INPUTS) {
    const v = data[k];
    if (typeof v === 'string' && v !== NO_CHOICE) out[k] = v.slice(0, k === 'justification' ? 2000 : 200);
  }
  return out;
}

const targetChoice = (t: TargetChoice): Choice => ({ value: t.name, title: `${t.name} (${t.os})` });

/** The form card for `principal`, with the values typed so far and the errors to show. */
export function formCardFor(host: FormHost, principal: PrincipalId, values: Record<string, string> = {}, errors: Record<string, string> = {}, timeZone?: string): CardJson {
  const { views, platform } = host;
  const all = views.requestForm(principal, platform, { ...(timeZone ? { timeZone } : {}) });
  if (!all.ok) return nothingToRequestCard(all.reason);
  const filter = values.filter?.trim() ?? '';
  let shown: TargetChoice[] = all.typeahead && filter ? views.searchTargets(principal, filter, FORM_TARGETS_SHOWN) : all.targets.slice(0, FORM_TARGETS_SHOWN);
  // The target: the one chosen, unless a search leaves it out (then the best match).
  let name = values.target && all.targets.some((t) => t.name === values.target) ? values.target : undefined;
  if (name && filter && !name.includes(filter.toLowerCase()) && shown.length) name = shown[0]!.name;
  name ??= shown[0]?.name ?? all.targets[0]!.name;
  if (!shown.some((t) => t.name === name)) {
    const chosen = all.targets.find((t) => t.name === name);
    if (chosen) shown = [chosen, ...shown.slice(0, FORM_TARGETS_SHOWN - 1)];
  }
  const model = views.requestForm(principal, platform, { target: name, ...(values.access ? { access: values.access } : {}), ...(timeZone ? { timeZone } : {}) });
  const sel: SelectedTargetForm | undefined = model.ok ? model.selected : undefined;
  const durations = (sel?.durations ?? []).map((d) => ({ value: String(d.ms), title: d.label }));
  const duration = values.duration && durations.some((d) => d.value === values.duration) ? values.duration : String(sel?.defaultDurationMs ?? '');
  const data: FormCardData = {
    targets: shown.map(targetChoice),
    targetTotal: all.count,
    ...(filter ? { filter } : {}),
    access: (sel?.access ?? []).map((a) => ({ value: a.id, title: a.label })),
    durations,
    justification: { hint: sel?.justification.hint ?? (sel?.justification.required ? 'Why you need it (required)' : 'Why you need it (optional)'), required: sel?.justification.required ?? false, ...(sel?.justification.pattern ? { pattern: sel.justification.pattern } : {}) },
    sourceHint: sourceHint(sel),
    values: { ...values, target: name, ...(sel ? { access: sel.selectedAccess } : {}), duration },
    errors,
    ...(sel && !sel.approvalRequired ? { note: `${sel.target.name}: opens at once, no approval needed.` } : sel ? { note: `${sel.target.name}: approvers decide.` } : {}),
  };
  return formCard(data);
}

/** What the source field's placeholder says: what an empty field means, and what may be typed. */
function sourceHint(sel: SelectedTargetForm | undefined): string {
  if (!sel) return 'your address, e.g. 203.0.113.7';
  const typed = sel.sources.find((s) => s.kind === 'typed');
  const first = sel.sources[0];
  const allowed = typed && typed.kind === 'typed' && typed.allowed ? ` (allowed: ${typed.allowed})` : '';
  if (first?.kind === 'fixed') return `empty: ${first.value}; or type an address${allowed}`;
  if (first?.kind === 'myip') return `empty: a one-time "my IP" link; or type an address${allowed}`;
  return `your address, e.g. 203.0.113.7${allowed}`;
}

/** The start as the form's submission reads it: date and time, or a time alone (today or tomorrow). */
function startOf(v: Record<string, string>): { start?: string; error?: string } {
  const date = v.startDate?.trim() ?? '';
  const time = v.startTime?.trim() ?? '';
  if (!date && !time) return {};
  if (date && !/^\d{4}-\d{2}-\d{2}$/.test(date)) return { error: 'the date must be YYYY-MM-DD' };
  if (time && !/^\d{1,2}:\d{2}(:\d{2})?$/.test(time)) return { error: 'the time must be HH:MM' };
  if (date && !time) return { error: 'give the time too (or leave both empty to open now)' };
  return { start: date ? `${date}T${time.slice(0, 5)}` : time.slice(0, 5) };
}

/** The home card of `principal`, with what the last click did on top. */
export async function homeCardFor(host: FormHost, principal: PrincipalId, note?: string): Promise<CardJson> {
  const [model, refreshUserIds] = await Promise.all([host.views.homeView(principal, host.platform), host.refreshUserIds?.(principal) ?? Promise.resolve([])]);
  return homeCard({ model, refreshUserIds, ...(note ? { note } : {}) });
}

const isFormVerb = (verb: string) => (Object.values(FORM_VERBS) as string[]).includes(verb);

/** True for a click this module answers: a form verb, or a button of the home card. */
export const isFormAction = (verb: string, data: Record<string, unknown>): boolean => isFormVerb(verb) || data.home === true;

/** Runs a click on the form or the home card as `principal`. */
export async function runFormAction(host: FormHost, principal: PrincipalId, verb: string, data: Record<string, unknown>, opts: { timeZone?: string; replyTo?: string } = {}): Promise<FormActionResult> {
  const values = inputsOf(data);
  switch (verb) {
    case FORM_VERBS.open: {
      const form = formCardFor(host, principal, {}, {}, opts.timeZone);
      // From the home card: the form comes as a new message, the home card stays.
      return data.home === true ? { kind: 'card', card: await homeCardFor(host, principal), form } : { kind: 'card', card: form };
    }
    case FORM_VERBS.choices:
      return { kind: 'card', card: formCardFor(host, principal, values, {}, opts.timeZone) };
    case FORM_VERBS.submit: {
      const start = startOf(values);
      if (start.error) return { kind: 'card', card: formCardFor(host, principal, values, { start: start.error }, opts.timeZone) };
      const form: FormValues = {
        ...(values.target ? { target: values.target } : {}),
        ...(values.access ? { access: values.access } : {}),
        ...(values.duration ? { duration: values.duration } : {}),
        ...(values.source?.trim() ? { source: values.source.trim() } : {}),
        ...(values.justification?.trim() ? { justification: values.justification } : {}),
        ...(start.start ? { start: start.start } : {}),
      };
      const result = await host.views.submitForm(principal, host.platform, form, { ...(opts.timeZone ? { timeZone: opts.timeZone } : {}), ...(opts.replyTo ? { replyTo: opts.replyTo } : {}) });
      if (!result.ok) return { kind: 'card', card: formCardFor(host, principal, values, result.errors as Record<string, string>, opts.timeZone) };
      return { kind: 'card', card: replyCard(result.reply), created: result.reply };
    }
    case FORM_VERBS.home:
      return { kind: 'card', card: await homeCardFor(host, principal) };
  }
  // A home card button: the approval cards' handler, then the home card again with its outcome.
  const clicked = await runCardAction(host.service, principal, verb, data, host.view, host.log);
  const id = typeof data.requestId === 'string' ? data.requestId : '';
  let note = clicked.kind === 'message' ? clicked.text : `✓ ${DONE[verb] ?? 'Done'}: ${id}`;
  // An approval that is one of several the policy needs: say so (the request still waits).
  if (clicked.kind === 'card' && verb === VERBS.approve && (await host.service.get(id))?.status === 'pending') note = `✓ Your approval of ${id} is recorded; it needs more approvals`;
  return { kind: 'card', card: await homeCardFor(host, principal, note), note };
}

const DONE: Record<string, string> = {
  [VERBS.approve]: 'approved',
  [VERBS.deny]: 'denied',
  [VERBS.extApprove]: 'extension approved',
  [VERBS.extDeny]: 'extension denied',
};

/** A reply as one line (the console's toast, a log). */
export const replyText = (r: Reply): string => renderText(r, 'jit');
