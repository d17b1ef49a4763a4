// Slack's side of the chat-native forms: `/jit` with no text and the "Request access" shortcut open
// the request modal (views.open), changing the VM or the access re-draws it (views.update from
// block_actions), more than 100 VMs are searched through the options load URL (block_suggestion),
// the submission runs the typed command's use case (errors by block, nothing created until valid),
// and the App Home (views.publish) is drawn on app_home_opened and on every change that concerns
// its owner (ChatPlatform.homes, called by the shared notifier).
import type { App, webApi } from '@slack/bolt';
import type { KnownBlock } from '@slack/types';
import type { FormValues } from '../../app/forms.js';
import type { ChatViews } from '../../app/views.js';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import type { HomeViewers } from '../chat/home-viewers.js';
import { replyMessage } from './blocks.js';
import { FORM_ACTIONS, FORM_MODAL, SHORTCUT, VIEW_LIMITS, blockId, homeView, infoModal, requestModal, resultModal, slackErrors, targetOption, targetValue, type FormMeta } from './views.js';

type Client = InstanceType<typeof webApi.WebClient>;

export interface FormHost {
  app: App;
  client: Client;
  log: Logger;
  /** The form and home models; undefined until bootstrap binds them. */
  views(): ChatViews | undefined;
  /** The principal (and profile time zone) behind a Slack user id; throws a clear error if none. */
  resolve(userId: string): Promise<{ principal: PrincipalId; timeZone?: string }>;
  /** A Slack user id for a principal, or null. */
  userOf(principal: PrincipalId): Promise<string | null>;
  /** A failure as one line for a person. */
  errorText(err: unknown): string;
  /** Counts a failed Web API call. */
  call<T>(p: Promise<T>): Promise<T>;
  /** Who opened the App Home in the last 30 days (their homes are kept current). */
  homes: HomeViewers;
}

/** One input's state as Slack sends it in view.state.values. */
interface InputState {
  type?: string;
  value?: string | null;
  selected_option?: { value?: string } | null;
  selected_date_time?: number | null;
}
type StateValues = Record<string, Record<string, InputState>>;

const parseMeta = (s: string | undefined): FormMeta => {
  try {
    const m = JSON.parse(s ?? '{}') as Partial<FormMeta>;
    return { rev: typeof m.rev === 'number' && m.rev >= 0 ? m.rev : 0, ...(typeof m.channel === 'string' ? { channel: m.channel } : {}), ...(typeof m.timeZone === 'string' ? { timeZone: m.timeZone } : {}) };
  } catch {
    return { rev: 0 };
  }
};

/** A field's value from the modal's state at revision `rev` (selects, radios, text, the date-time picker). */
function read(values: StateValues, id: string, action: string): string | undefined {
  const s = values[id]?.[action];
  if (!s) return undefined;
  if (s.selected_option?.value) return s.selected_option.value;
  if (typeof s.selected_date_time === 'number') return String(s.selected_date_time * 1000);
  return typeof s.value === 'string' ? s.value : undefined;
}

/** How long a submission may take before the modal answers "by DM" (Slack gives up after 3 s). */
export const ACK_BUDGET_MS = 2200;

export class SlackForms {
  constructor(
    private readonly host: FormHost,
    private readonly ackBudgetMs = ACK_BUDGET_MS,
  ) {}

  /** Whether forms are wired (bootstrap bound the views). */
  get enabled(): boolean {
    return this.host.views() !== undefined;
  }

  private views(): ChatViews {
    const v = this.host.views();
    if (!v) throw new Error('slack forms used before bind()');
    return v;
  }

  /** A target option value back to its name (long names travel as a digest, see targetValue). */
  private targetName(principal: PrincipalId, value: string | undefined): string | undefined {
    if (!value?.startsWith('~')) return value;
    return this.views().forms.requestableTargets(principal).find((t) => targetValue(t.name) === value)?.name ?? value;
  }

  /**
   * Opens the request modal for `userId`. A person who may request nothing gets `refuse(reason)`
   * (an ephemeral answer to /jit; the shortcut shows it in a modal) and no form.
   */
  async open(userId: string, triggerId: string, channel: string | undefined, refuse: (reason: string) => Promise<void>): Promise<void> {
    const who = await this.host.resolve(userId);
    const model = this.views().requestForm(who.principal, 'slack', { ...(who.timeZone ? { timeZone: who.timeZone } : {}) });
    if (!model.ok) return refuse(model.reason);
    const meta: FormMeta = { rev: 0, ...(channel ? { channel } : {}), ...(who.timeZone ? { timeZone: who.timeZone } : {}) };
    await this.host.call(this.host.client.views.open({ trigger_id: triggerId, view: requestModal(model, meta) }));
  }

  register(): void {
    const { app, log } = this.host;

    app.shortcut(SHORTCUT, async ({ ack, body }) => {
      await ack();
      try {
        await this.open(body.user.id, body.trigger_id, undefined, async (reason) => {
          await this.host.call(this.host.client.views.open({ trigger_id: body.trigger_id, view: infoModal(`✗ ${reason}`) }));
        });
      } catch (err) {
        await this.host.client.views.open({ trigger_id: body.trigger_id, view: infoModal(`✗ ${this.host.errorText(err)}`) }).catch((e: unknown) => log.warn('slack: could not show the form error', { err: e }));
      }
    });

    // The home's "Request access" button.
    app.action(FORM_ACTIONS.open, async ({ ack, body }) => {
      await ack();
      const b = body as { user: { id: string }; trigger_id?: string };
      try {
        await this.open(b.user.id, b.trigger_id ?? '', undefined, async (reason) => {
          await this.host.call(this.host.client.views.open({ trigger_id: b.trigger_id ?? '', view: infoModal(`✗ ${reason}`) }));
        });
      } catch (err) {
        log.warn('slack: the request form did not open', { err });
      }
    });

    // A different VM or access re-draws the form for it (the other fields follow its policy).
    const redraw = async ({ ack, body }: { ack: () => Promise<void>; body: unknown }) => {
      await ack();
      const b = body as { user: { id: string }; view?: { id: string; hash?: string; private_metadata?: string; state?: { values: StateValues } } };
      if (!b.view) return;
      try {
        const who = await this.host.resolve(b.user.id);
        const meta = parseMeta(b.view.private_metadata);
        const values = b.view.state?.values ?? {};
        const target = this.targetName(who.principal, read(values, 'target', FORM_ACTIONS.target));
        const access = read(values, blockId('access', meta.rev), FORM_ACTIONS.access);
        const model = this.views().requestForm(who.principal, 'slack', { ...(target ? { target } : {}), ...(access ? { access } : {}), ...(meta.timeZone ? { timeZone: meta.timeZone } : {}) });
        const view = model.ok ? requestModal(model, { ...meta, rev: meta.rev + 1 }) : infoModal(`✗ ${model.reason}`);
        await this.host.call(this.host.client.views.update({ view_id: b.view.id, ...(b.view.hash ? { hash: b.view.hash } : {}), view }));
      } catch (err) {
        // A hash conflict means a newer update is already on its way: nothing to do.
        log.warn('slack: the request form was not updated', { err });
      }
    };
    app.action(FORM_ACTIONS.target, redraw);
    app.action(FORM_ACTIONS.access, redraw);

    // Past 100 VMs the VM field is a typeahead: Slack asks here for the options matching what was typed.
    app.options(FORM_ACTIONS.target, async ({ ack, body }) => {
      try {
        const who = await this.host.resolve(body.user.id);
        const options = this.views().searchTargets(who.principal, body.value ?? '', VIEW_LIMITS.selectOptions).map(targetOption);
        await ack({ options });
      } catch (err) {
        log.warn('slack: VM search failed', { err });
        await ack({ options: [] });
      }
    });

    app.view(FORM_MODAL, async ({ ack, body, view }) => {
      const meta = parseMeta(view.private_metadata);
      const values = view.state.values as StateValues;
      const typedSource = read(values, blockId('source_text', meta.rev), 'source_text')?.trim();
      const picked = read(values, blockId('source', meta.rev), 'source');
      try {
        const who = await this.host.resolve(body.user.id);
        const form: FormValues = {};
        const set = (k: keyof FormValues, v: string | undefined) => {
          if (v !== undefined && v !== '') form[k] = v;
        };
        set('target', this.targetName(who.principal, read(values, 'target', FORM_ACTIONS.target)));
        set('access', read(values, blockId('access', meta.rev), FORM_ACTIONS.access));
        set('duration', read(values, blockId('duration', meta.rev), 'duration'));
        set('source', typedSource || picked);
        set('justification', read(values, blockId('justification', meta.rev), 'justification'));
        set('start', read(values, blockId('start', meta.rev), 'start'));
        const tz = who.timeZone ?? meta.timeZone;
        const submitted = this.views().submitForm(who.principal, 'slack', form, { ...(meta.channel ? { replyTo: meta.channel } : {}), ...(tz ? { timeZone: tz } : {}) });
        // Slack waits 3 s for this answer; the use case also tells the approvers (Slack calls of
        // its own). Past ACK_BUDGET_MS the modal says the answer comes by DM, and it does.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((ok) => (timer = setTimeout(() => ok('late'), this.ackBudgetMs)));
        const result = await Promise.race([submitted, late]).finally(() => clearTimeout(timer));
        if (result === 'late') {
          await ack({ response_action: 'update', view: resultModal([{ type: 'section', text: { type: 'mrkdwn', text: 'Your request is being made; the answer arrives by direct message in a moment.' } }]) });
          const done = await submitted.catch((err: unknown) => ({ ok: false as const, errors: { form: this.host.errorText(err) } }));
          const m = done.ok ? replyMessage(done.reply) : replyMessage({ kind: 'info', message: `✗ Nothing was requested: ${Object.values(done.errors).join('; ')}` });
          await this.host.call(this.host.client.chat.postMessage({ channel: body.user.id, text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false })).catch((err: unknown) => log.warn('slack: the form\'s late answer was not sent', { err }));
          return;
        }
        if (!result.ok) {
          // An error for a field the form does not show (a VM whose policy offers no duration …) goes on the VM field.
          const shown = new Set(((view.blocks as Array<{ block_id?: string }> | undefined) ?? []).map((x) => x.block_id));
          const errors: Record<string, string> = {};
          for (const [k, v] of Object.entries(slackErrors(result.errors, meta.rev, Boolean(typedSource), picked !== undefined))) {
            const at = shown.has(k) ? k : 'target';
            errors[at] = errors[at] ? `${errors[at]}; ${v}`.slice(0, VIEW_LIMITS.errorText) : v;
          }
          await ack({ response_action: 'errors', errors });
          return;
        }
        // The command's own answer, in the modal (a "my IP" link is clicked there).
        await ack({ response_action: 'update', view: resultModal(replyMessage(result.reply).blocks as KnownBlock[]) });
      } catch (err) {
        await ack({ response_action: 'errors', errors: { target: this.host.errorText(err).slice(0, VIEW_LIMITS.errorText) } });
      }
    });

    app.event('app_home_opened', async ({ event }) => {
      if (event.tab !== 'home') return;
      // Noted before it is drawn: a change while it is drawn draws it again.
      const who = await this.host.resolve(event.user).then((w) => w.principal, () => undefined);
      if (who) await this.host.homes.mark(who).catch((err: unknown) => log.warn('slack: could not note an opened home', { err }));
      await this.publish(event.user, who).catch((err: unknown) => log.warn('slack: home not published', { err }));
    });
  }

  /** Draws `userId`'s App Home from the home model (a person the bot cannot resolve gets why). */
  async publish(userId: string, principal?: PrincipalId): Promise<void> {
    const views = this.views();
    let who: PrincipalId;
    try {
      who = principal ?? (await this.host.resolve(userId)).principal;
    } catch (err) {
      await this.host.call(this.host.client.views.publish({ user_id: userId, view: { type: 'home', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `✗ ${this.host.errorText(err)}`.slice(0, 3000) } }] } }));
      return;
    }
    const model = await views.homeView(who, 'slack');
    const note = views.forms.noRequestReason(who);
    await this.host.call(this.host.client.views.publish({ user_id: userId, view: homeView(model, note) }));
  }

  /**
   * The notifier's hook: the home of a principal who opened it in the last 30 days, drawn again
   * (the notifier asks only for those: an approver group of hundreds who never look costs no calls;
   * opening it draws it fresh anyway).
   */
  async refreshHome(principal: PrincipalId): Promise<void> {
    if (!this.enabled) return;
    const user = await this.host.userOf(principal);
    if (user) await this.publish(user, principal);
  }
}
