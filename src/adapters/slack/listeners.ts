// Slack's incoming side, registered on the Bolt app: the `/jit` slash command (`/jit` alone opens
// the request form), the Approve / Deny / Revoke / Extend buttons of cards and of the App Home,
// and the deny reason's modal. Before any listener, a request from another workspace is refused.
import type { App, webApi } from '@slack/bolt';
import type { JitService } from '../../app/service.js';
import { REQUEST_ID_RE } from '../../core/ids.js';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { ACTIONS, DENY_MODAL, denyModal, replyMessage, type SlackMessage } from './blocks.js';
import type { SlackDirectory } from './directory.js';
import type { SlackForms } from './forms.js';
import { FORM_MODAL } from './views.js';
import { refuseForeign, type SlackWorkspace } from './workspace.js';

/** What the listeners use of the adapter. */
export interface SlackListeners {
  app: App;
  client: InstanceType<typeof webApi.WebClient>;
  log: Logger;
  directory: SlackDirectory;
  forms: SlackForms;
  svc(): JitService;
  /** The installed workspace (auth.test), to refuse the others. */
  installed(): Promise<SlackWorkspace | undefined>;
  /** True the first time a Slack interaction (trigger_id) is seen: retries and replays are dropped. */
  firstTime(kind: string, key: string | undefined): Promise<boolean>;
  /** Answers through response_url; if Slack refuses the blocks, the same answer as text only. */
  respondSafely(send: (m: { text: string; blocks?: SlackMessage['blocks'] }) => Promise<unknown>, m: SlackMessage): Promise<void>;
  errorMessage(err: unknown): SlackMessage;
  /** A Web API call, its failure counted. */
  call<T>(p: Promise<T>): Promise<T>;
}

export const fail = (message: string): SlackMessage => replyMessage({ kind: 'info', message: `✗ ${message}` });

export function registerListeners(ctx: SlackListeners): void {
  const { app, client, directory, forms, log } = ctx;

  // Before any listener: the request must come from the installed workspace (workspace.ts).
  app.use(refuseForeign(() => ctx.installed(), log, { [DENY_MODAL]: 'reason', [FORM_MODAL]: 'target' }));

  app.command('/jit', async ({ command, ack, respond, context }) => {
    await ack();
    if (!(await ctx.firstTime('cmd', command.trigger_id))) {
      log.info('slack: repeated slash command ignored', { retry: context.retryNum ?? 0 });
      return;
    }
    let message: SlackMessage;
    // `/jit` alone opens the request form (a modal); someone who may request nothing is told why instead.
    if (!command.text.trim() && forms.enabled) {
      try {
        await forms.open(command.user_id, command.trigger_id, command.channel_id, async (reason) => {
          await ctx.respondSafely((m) => respond({ response_type: 'ephemeral', ...m }), fail(reason));
        });
      } catch (err) {
        await ctx.respondSafely((m) => respond({ response_type: 'ephemeral', ...m }), ctx.errorMessage(err));
      }
      return;
    }
    try {
      const who = await directory.resolve(command.user_id);
      const reply = await ctx.svc().execute(who.principal, command.text, {
        via: 'slack',
        replyTo: command.channel_id,
        ...(who.timeZone ? { timeZone: who.timeZone } : {}),
      });
      message = replyMessage(reply);
    } catch (err) {
      message = ctx.errorMessage(err);
    }
    await ctx.respondSafely((m) => respond({ response_type: 'ephemeral', ...m }), message);
  });

  /**
   * Every button: ack at once, drop replays (trigger_id seen), read the button value (`parse`
   * answers a string to refuse it), resolve the clicker from the verified payload (nothing in
   * the value names a person), answer privately.
   */
  const onClick =
    <T>(parse: (value: string) => T | string, handle: (principal: PrincipalId, value: T, triggerId: string) => Promise<SlackMessage | void>) =>
    async (args: { ack: () => Promise<void>; body: unknown; action: unknown; respond?: (m: object) => Promise<unknown> }) => {
      await args.ack();
      const body = args.body as { user: { id: string }; trigger_id?: string; container?: { type?: string }; view?: { type?: string } };
      // A button in a message answers there (response_url); one on the App Home or in a modal has
      // no response_url: a refusal arrives by DM, a success shows on the home, drawn again.
      const respond = args.respond;
      const fromView = !respond;
      const say = async (m: SlackMessage, failed = true): Promise<void> => {
        if (respond) return ctx.respondSafely((x) => respond({ response_type: 'ephemeral', replace_original: false, ...x }), m);
        if (!failed) return;
        await ctx.call(client.chat.postMessage({ channel: body.user.id, text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false })).catch((err: unknown) =>
          log.warn('slack: answer to a click on a view not sent', { err }),
        );
      };
      if (!(await ctx.firstTime('act', body.trigger_id))) return void (await say(fail('this click was already handled; nothing changed')));
      const value = parse((args.action as { value?: string }).value ?? '');
      if (typeof value === 'string') return void (await say(fail(value)));
      try {
        const who = await directory.resolve(body.user.id);
        const m = await handle(who.principal, value, body.trigger_id ?? '');
        if (m) await say(m, false);
        if (fromView && body.view?.type === 'home') await forms.publish(body.user.id, who.principal).catch((err: unknown) => log.warn('slack: home not published', { err }));
      } catch (err) {
        await say(ctx.errorMessage(err));
      }
    };
  const requestId = (v: string) => (REQUEST_ID_RE.test(v) ? { id: v } : 'this button does not name a request; nothing changed');
  const decision = (decision: 'approve' | 'deny', scope: 'request' | 'extension') =>
    onClick(requestId, async (principal, { id }, triggerId) => {
      if (decision === 'approve') return replyMessage(await ctx.svc().decide(principal, id, 'approve', undefined, scope));
      // Deny asks for a reason first; the clicker is checked before the dialog opens.
      await ctx.svc().checkDecide(principal, id, 'deny', scope);
      const req = await ctx.svc().get(id);
      await client.views.open({ trigger_id: triggerId, view: denyModal(id, scope, req?.target ?? '') });
    });
  app.action(ACTIONS.approve, decision('approve', 'request'));
  app.action(ACTIONS.deny, decision('deny', 'request'));
  app.action(ACTIONS.extApprove, decision('approve', 'extension'));
  app.action(ACTIONS.extDeny, decision('deny', 'extension'));
  app.action(ACTIONS.revoke, onClick(requestId, async (principal, { id }) => replyMessage(await ctx.svc().revoke(principal, id))));
  app.action(
    new RegExp(`^${ACTIONS.extend}_\\d+$`),
    onClick(
      (v) => {
        const [id = '', ms = '', ...rest] = v.split(':');
        return REQUEST_ID_RE.test(id) && /^\d{1,9}$/.test(ms) && rest.length === 0 ? { id, addMs: Number(ms) } : 'this button does not name an extension; nothing changed';
      },
      async (principal, { id, addMs }) => replyMessage(await ctx.svc().extend(principal, id, addMs)),
    ),
  );

  app.view(DENY_MODAL, async ({ ack, body, view }) => {
    let meta: { requestId?: unknown; scope?: unknown } = {};
    try {
      meta = JSON.parse(view.private_metadata) as typeof meta;
    } catch {
      /* handled below */
    }
    const id = typeof meta.requestId === 'string' ? meta.requestId : '';
    const scope = meta.scope === 'extension' ? 'extension' : 'request';
    const reason = view.state.values.reason?.reason?.value?.trim() || undefined;
    if (!REQUEST_ID_RE.test(id)) {
      await ack({ response_action: 'errors', errors: { reason: 'This dialog does not name a request; nothing changed.' } });
      return;
    }
    try {
      const who = await directory.resolve(body.user.id);
      await ctx.svc().decide(who.principal, id, 'deny', reason, scope);
      await ack();
    } catch (err) {
      await ack({ response_action: 'errors', errors: { reason: ctx.errorMessage(err).text.slice(0, 150) } });
    }
  });

  app.error(async (err) => {
    log.error('slack: listener failed', { err });
  });
}
