// Block Kit for the request form (a modal) and the App Home, from the platform-neutral models of
// src/app/forms.ts and src/app/home.ts. Pure functions; the buttons of the home are the approval
// cards' and reminders' own (same action ids, same values), so a click there runs the same handler.
import { createHash } from 'node:crypto';
import type { ActionsBlock, Button, HomeView, InputBlock, KnownBlock, ModalView, PlainTextElement, PlainTextOption, SectionBlock } from '@slack/types';
import type { FormErrors, FormField, RequestFormModel, SelectedTargetForm, TargetChoice } from '../../app/forms.js';
import type { GrantEntry, HomeModel, HomeSection, PendingEntry } from '../../app/home.js';
import type { ApprovalCard } from '../../app/chat/platform.js';
import { formatDuration } from '../../core/duration.js';
import { portsOf, sourceOf } from '../../core/messages.js';
import { describeStatus } from '../../core/state.js';
import type { AccessRequest } from '../../core/types.js';
import { ACTIONS, BLOCK_KIT, clip, esc, slackDate } from './blocks.js';

export const FORM_MODAL = 'jit_request_form';
export const FORM_ACTIONS = { target: 'jit_form_target', access: 'jit_form_access', open: 'jit_form_open' } as const;
/** The global shortcut's callback id (manifest/slack/manifest.yaml). */
export const SHORTCUT = 'jit_request_access';

/** Block Kit limits of the form and the home (Slack's reference: views, select menus, option objects). */
export const VIEW_LIMITS = {
  blocksPerView: 100,
  selectOptions: 100,
  optionText: 75,
  optionValue: 75,
  placeholder: 150,
  hint: 2000,
  errorText: 150,
} as const;

/** What the modal carries between its updates and its submission. */
export interface FormMeta {
  /** Where /jit was typed (for the record; replies go to the modal itself). */
  channel?: string;
  timeZone?: string;
  /** Bumped on every update: block ids change with it, so Slack does not keep a choice the new options lack. */
  rev: number;
}

const plain = (text: string, max: number): PlainTextElement => ({ type: 'plain_text', text: text.trim() ? clip(text, max, false) : '—', emoji: true });
const md = (text: string, max: number = BLOCK_KIT.sectionText) => ({ type: 'mrkdwn' as const, text: text.trim() ? clip(text, max) : '—' });
const section = (text: string, blockId?: string): SectionBlock => ({ type: 'section', text: md(text), ...(blockId ? { block_id: blockId } : {}) });
const option = (text: string, value: string): PlainTextOption => ({ text: plain(text, VIEW_LIMITS.optionText), value: clip(value, VIEW_LIMITS.optionValue, false) });

/**
 * A target as an option value: its name when it fits Slack's 75 characters, else `~` and a digest
 * of the name (two long names sharing their first 75 characters must not share a value).
 */
export const targetValue = (name: string): string =>
  name.length <= VIEW_LIMITS.optionValue ? name : `~${createHash('sha256').update(name).digest('base64url').slice(0, 22)}`;
export const targetOption = (t: TargetChoice): PlainTextOption => option(`${t.name} (${t.os})`, targetValue(t.name));

/** The block id of a field in the modal at revision `rev`. */
export const blockId = (field: FormField | 'source_text', rev: number): string => (field === 'target' ? 'target' : `${field}_r${rev}`);

/** The request form as a modal; `errors` are not shown here (Slack shows them from response_action). */
export function requestModal(model: Extract<RequestFormModel, { ok: true }>, meta: FormMeta): ModalView {
  const sel = model.selected;
  const blocks: KnownBlock[] = [targetInput(model, sel)];
  if (sel) blocks.push(...selectedInputs(sel, meta.rev));
  else blocks.push({ type: 'context', elements: [md(model.typeahead ? `Type part of a VM name: you may request ${model.count} VMs.` : 'Choose a VM: the access, durations and sources it allows follow.')] });
  return {
    type: 'modal',
    callback_id: FORM_MODAL,
    private_metadata: JSON.stringify(meta),
    title: plain('Request access', BLOCK_KIT.modalTitle),
    submit: plain('Request', BLOCK_KIT.modalTitle),
    close: plain('Cancel', BLOCK_KIT.modalTitle),
    blocks,
  };
}

function targetInput(model: Extract<RequestFormModel, { ok: true }>, sel: SelectedTargetForm | undefined): InputBlock {
  const initial = sel ? { initial_option: targetOption(sel.target) } : {};
  // Up to 100 targets: a plain list; past that, a typeahead fed by the options load URL.
  const element = model.typeahead
    ? { type: 'external_select' as const, action_id: FORM_ACTIONS.target, min_query_length: 0, placeholder: plain('Search your VMs', VIEW_LIMITS.placeholder), ...initial }
    : { type: 'static_select' as const, action_id: FORM_ACTIONS.target, placeholder: plain('Choose a VM', VIEW_LIMITS.placeholder), options: model.targets.slice(0, VIEW_LIMITS.selectOptions).map(targetOption), ...initial };
  return { type: 'input', block_id: 'target', dispatch_action: true, label: plain('VM', BLOCK_KIT.inputLabel), element };
}

function selectedInputs(sel: SelectedTargetForm, rev: number): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  const access = sel.access.slice(0, VIEW_LIMITS.selectOptions).map((a) => option(a.label, a.id));
  const chosenAccess = access.find((o) => o.value === sel.selectedAccess);
  if (access.length === 0) return [section(`${esc(sel.target.name)}'s policy allows no port: nothing can be requested.`)];
  blocks.push({
    type: 'input',
    block_id: blockId('access', rev),
    dispatch_action: true,
    label: plain('Access', BLOCK_KIT.inputLabel),
    element: { type: 'static_select', action_id: FORM_ACTIONS.access, options: access, ...(chosenAccess ? { initial_option: chosenAccess } : {}) },
  });
  const durations = sel.durations.slice(-VIEW_LIMITS.selectOptions).map((d) => option(d.label, String(d.ms)));
  const chosenDuration = durations.find((o) => o.value === String(sel.defaultDurationMs));
  if (durations.length) {
    blocks.push({
      type: 'input',
      block_id: blockId('duration', rev),
      label: plain('For how long', BLOCK_KIT.inputLabel),
      hint: plain(`At most ${formatDuration(Math.max(...sel.durations.map((d) => d.ms)))} under ${sel.target.name}'s policy.`, VIEW_LIMITS.hint),
      element: { type: 'static_select', action_id: 'duration', options: durations, ...(chosenDuration ? { initial_option: chosenDuration } : {}) },
    });
  }
  const picks = sel.sources.filter((s) => s.kind !== 'typed');
  const typed = sel.sources.find((s) => s.kind === 'typed');
  if (picks.length) {
    const opts = picks.map((s) => option(s.kind === 'fixed' ? `${s.value} (this VM's range)` : 'My IP address (a one-time link)', s.kind));
    blocks.push({
      type: 'input',
      block_id: blockId('source', rev),
      label: plain('Connect from', BLOCK_KIT.inputLabel),
      element: { type: 'radio_buttons', action_id: 'source', options: opts, initial_option: opts[0]! },
    });
  }
  if (typed && typed.kind === 'typed') {
    blocks.push({
      type: 'input',
      block_id: blockId('source_text', rev),
      optional: picks.length > 0,
      label: plain(picks.length ? 'Or an address or range' : 'Connect from (your address or range)', BLOCK_KIT.inputLabel),
      hint: plain(`Allowed: ${typed.allowed}.`, VIEW_LIMITS.hint),
      element: { type: 'plain_text_input', action_id: 'source_text', max_length: 64, placeholder: plain('203.0.113.7', VIEW_LIMITS.placeholder) },
    });
  }
  const j = sel.justification;
  const rule = j.pattern ? `Must match ${j.pattern}${j.hint ? ` (${j.hint})` : ''}.` : j.hint ?? '';
  blocks.push({
    type: 'input',
    block_id: blockId('justification', rev),
    optional: !j.required,
    label: plain(j.required ? 'Justification' : 'Justification (optional)', BLOCK_KIT.inputLabel),
    ...(rule ? { hint: plain(rule, VIEW_LIMITS.hint) } : {}),
    element: { type: 'plain_text_input', action_id: 'justification', multiline: true, max_length: j.maxLength, ...(j.hint ? { placeholder: plain(j.hint, VIEW_LIMITS.placeholder) } : {}) },
  });
  if (sel.start.allowed) {
    blocks.push({
      type: 'input',
      block_id: blockId('start', rev),
      optional: true,
      label: plain('Start later (optional)', BLOCK_KIT.inputLabel),
      hint: plain(`Empty: open as soon as it is approved. At most ${formatDuration(sel.start.maxAheadMs)} ahead; shown in your time zone (${sel.start.timeZone}).`, VIEW_LIMITS.hint),
      element: { type: 'datetimepicker', action_id: 'start' },
    });
  }
  blocks.push({ type: 'context', elements: [md(sel.approvalRequired ? `Approvers of ${esc(sel.target.name)} decide; you will see it on your Home tab and by DM.` : `${esc(sel.target.name)} opens without approval once the request is valid.`)] });
  return blocks;
}

/** The modal after a request was made: the command's own answer (`blocks` from replyMessage). */
export function resultModal(blocks: KnownBlock[]): ModalView {
  return { type: 'modal', callback_id: `${FORM_MODAL}_done`, title: plain('Request access', BLOCK_KIT.modalTitle), close: plain('Done', BLOCK_KIT.modalTitle), blocks: blocks.slice(0, VIEW_LIMITS.blocksPerView) };
}

/** A modal that only says something (the shortcut, for a person who may request nothing). */
export function infoModal(text: string): ModalView {
  return { type: 'modal', title: plain('Request access', BLOCK_KIT.modalTitle), close: plain('Close', BLOCK_KIT.modalTitle), blocks: [section(esc(text))] };
}

/** Errors by field as Slack's response_action "errors" wants them: by the block the field is in. */
export function slackErrors(errors: FormErrors, rev: number, typedSource: boolean, hasSourcePicks: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, message] of Object.entries(errors) as Array<[FormField | 'form', string]>) {
    const key = field === 'form' ? 'target' : field === 'source' ? blockId(typedSource || !hasSourcePicks ? 'source_text' : 'source', rev) : blockId(field, rev);
    out[key] = clip(out[key] ? `${out[key]}; ${message}` : message, VIEW_LIMITS.errorText, false);
  }
  return out;
}

// ---------------------------------------------------------------- App Home

/** Entries shown per section of the home (the rest counted): keeps the home within 100 blocks. */
export const HOME_SHOWN = { pending: 10, active: 8, approvals: 12, history: 15 } as const;

const button = (action_id: string, text: string, value: string, style?: 'primary' | 'danger'): Button => ({ type: 'button', action_id, text: plain(text, BLOCK_KIT.buttonText), value, ...(style ? { style } : {}) });
const closeConfirm = (r: AccessRequest, verb: string) => ({
  title: plain(`${verb}?`, BLOCK_KIT.confirmTitle),
  text: plain(`${verb} request ${r.id} for ${r.target}.`, BLOCK_KIT.confirmText),
  confirm: plain(verb, BLOCK_KIT.confirmButton),
  deny: plain('Keep it', BLOCK_KIT.confirmButton),
});

function more<T>(s: HomeSection<T>, shown: number, what: string): KnownBlock[] {
  const rest = s.more + Math.max(0, s.items.length - shown);
  return rest > 0 ? [{ type: 'context', elements: [md(`…and ${rest} more ${what}: \`/jit list\` shows them all.`)] }] : [];
}

const headline = (r: AccessRequest) => `*${esc(r.target)}* · ${esc(portsOf(r))} from ${esc(sourceOf(r))} · ${formatDuration(r.durationMs)} · \`${esc(r.id)}\``;

function pendingBlocks(e: PendingEntry): KnownBlock {
  const r = e.request;
  const when = r.startAt ? ` · starts ${slackDate(r.startAt)}` : '';
  const s: SectionBlock = section(`${headline(r)}\n${esc(describeStatus(r))}${when}`, `home_pending_${r.id}`);
  if (e.withdrawable) s.accessory = { ...button(ACTIONS.revoke, 'Withdraw', r.id), confirm: closeConfirm(r, 'Withdraw') };
  return s;
}

function grantBlocks(g: GrantEntry): KnownBlock[] {
  const r = g.request;
  const lines = g.connections.map((c) => `\`${esc(c.command)}\``).join('\n');
  const ext = g.extensionPending ? '\n_An extension waits for the approvers._' : '';
  const elements: Button[] = [
    ...g.extendOptionsMs.slice(0, BLOCK_KIT.actionsElements - 1).map((ms) => button(`${ACTIONS.extend}_${ms}`, `Extend +${formatDuration(ms)}`, `${r.id}:${ms}`)),
    { ...button(ACTIONS.revoke, 'Close now', r.id, 'danger'), confirm: closeConfirm(r, 'Close it') },
  ];
  return [
    section(`🔓 ${headline(r)}\nCloses ${slackDate(g.expiresAt)} (${formatDuration(Math.max(1000, g.timeLeftMs))} left)${ext}\n${lines}`, `home_grant_${r.id}`),
    { type: 'actions', block_id: `home_grant_actions_${r.id}`, elements } satisfies ActionsBlock,
  ];
}

function approvalBlocks(c: ApprovalCard): KnownBlock[] {
  const r = c.request;
  const ext = c.scope === 'extension';
  const what = ext ? `Extension by +${formatDuration(r.pendingExtension?.addMs ?? 0)} of ` : '';
  const why = r.justification ? `\n> ${esc(r.justification)}` : '';
  const votes = c.quorum > 1 ? `\nApprovals: ${(ext ? r.pendingExtension?.decisions ?? [] : r.decisions).filter((d) => d.decision === 'approve').length} of ${c.quorum}` : '';
  return [
    section(`${what}${headline(r)}\nby *${esc(r.requester)}*${why}${votes}`, `home_decide_${c.scope}_${r.id}`),
    {
      type: 'actions',
      block_id: `home_decide_actions_${c.scope}_${r.id}`,
      elements: [
        button(ext ? ACTIONS.extApprove : ACTIONS.approve, ext ? 'Approve extension' : 'Approve', r.id, 'primary'),
        button(ext ? ACTIONS.extDeny : ACTIONS.deny, 'Deny', r.id, 'danger'),
      ],
    } satisfies ActionsBlock,
  ];
}

/** The App Home of one person. `note`: why they may request nothing (instead of the Request button). */
export function homeView(model: HomeModel, note?: string): HomeView {
  const blocks: KnownBlock[] = [{ type: 'header', text: plain('Just-in-time access', BLOCK_KIT.headerText) }];
  blocks.push(
    note
      ? section(`✗ ${esc(note)}`, 'home_intro')
      : { type: 'actions', block_id: 'home_intro', elements: [button(FORM_ACTIONS.open, 'Request access', 'open', 'primary')] },
  );
  const part = (title: string, empty: string, body: KnownBlock[], tail: KnownBlock[]) => {
    blocks.push({ type: 'divider' }, section(`*${title}*`));
    blocks.push(...(body.length ? body : [{ type: 'context' as const, elements: [md(empty)] }]), ...tail);
  };
  part('Your requests waiting', 'None waiting.', model.pending.items.slice(0, HOME_SHOWN.pending).map(pendingBlocks), more(model.pending, HOME_SHOWN.pending, 'waiting'));
  part('Open now', 'No port is open for you.', model.active.items.slice(0, HOME_SHOWN.active).flatMap(grantBlocks), more(model.active, HOME_SHOWN.active, 'open'));
  if (model.approvals.items.length || model.approvals.more) {
    part('Waiting for your decision', '', model.approvals.items.slice(0, HOME_SHOWN.approvals).flatMap(approvalBlocks), more(model.approvals, HOME_SHOWN.approvals, 'waiting for a decision'));
  }
  const history = model.history.items.slice(0, HOME_SHOWN.history).map((r) => `${slackDate(r.updatedAt)} · ${headline(r)} · ${esc(describeStatus(r))}`);
  part('Your last 7 days', 'Nothing in the last 7 days.', history.length ? [section(history.join('\n'), 'home_history')] : [], more(model.history, HOME_SHOWN.history, 'in the last 7 days'));
  blocks.push({ type: 'context', elements: [md(`Updated ${slackDate(model.at)}`)] });
  return { type: 'home', blocks: blocks.slice(0, VIEW_LIMITS.blocksPerView) };
}
