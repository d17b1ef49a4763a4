// Teams' home card and request form: `jit` (or `jit request`) answers the form, `jit home` the home
// card, and installing the app (the bot added to a personal chat) posts the home card. The last
// home card posted to each person is remembered (Redis), so refreshHome (ChatPlatform.homes, called by the shared
// notifier when their requests or approvals change) updates it in place; Teams clients also
// refresh it themselves through the card's `refresh` (the jitHome verb) when it is shown.
import { ActivityTypes, CardFactory, TurnContext, type Activity, type ConversationReference } from 'botbuilder';
import type { Redis } from 'ioredis';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { FORM_VERBS, formCardFor, homeCardFor, isFormAction, runFormAction, type FormHost } from '../chat/form-actions.js';
import { HomeViewers } from '../chat/home-viewers.js';
import { messageCard, type CardJson } from './cards.js';

const REF_TTL_S = 365 * 86_400;

/** What a message's text asks for, past the `jit` prefix: the form, the home card, or a command. */
export function formRequest(text: string): 'form' | 'home' | undefined {
  const t = text.trim().toLowerCase();
  if (t === '' || t === 'jit' || t === 'request' || t === 'form') return 'form';
  if (t === 'home') return 'home';
  return undefined;
}

export interface TeamsHomeDeps {
  redis: Redis;
  key: (...parts: string[]) => string;
  /** Runs `fn` in a proactive turn of the conversation (the adapter's, with its failure counted). */
  proactive: <T>(ref: Partial<ConversationReference>, fn: (ctx: TurnContext) => Promise<T>) => Promise<T>;
  log: Logger;
  /** The authenticated sender's principal. */
  principalOf: (context: TurnContext) => Promise<PrincipalId>;
  /** The form and home cards' host; undefined until the adapter is bound with the views. */
  host: () => FormHost | undefined;
}

const activityOf = (card: CardJson, summary: string): Partial<Activity> => ({ type: ActivityTypes.Message, summary, attachments: [CardFactory.adaptiveCard(card)] });

export class TeamsHomes {
  /** Who was posted a home card in the last year (the notifier refreshes only theirs). */
  readonly viewers: HomeViewers;

  constructor(private readonly deps: TeamsHomeDeps) {
    this.viewers = new HomeViewers(deps.redis, deps.key('homes'), { ttlMs: REF_TTL_S * 1000 });
  }

  /** The app installed in a personal chat (the bot added): the home card, the start of everything. */
  async onInstall(context: TurnContext): Promise<void> {
    const a = context.activity;
    const host = this.deps.host();
    if (!host || a.conversation?.conversationType !== 'personal' || !a.membersAdded?.some((m) => m.id === a.recipient?.id)) return;
    const principal = await this.deps.principalOf(context).catch(() => null);
    if (principal) await this.sendHome(context, host, principal);
  }

  /** `jit` (the form) or `jit home` (the home card): answered here (true); anything else is a command. */
  async onMessage(context: TurnContext, principal: PrincipalId, text: string): Promise<boolean> {
    const wants = formRequest(text);
    const host = this.deps.host();
    if (!wants || !host) return false;
    if (wants === 'home' && context.activity.conversation?.conversationType !== 'personal') {
      // A home card lists one person's requests and approvals: not for a channel or group chat.
      await context.sendActivity(activityOf(messageCard({ title: 'Your home card is personal', text: 'It lists your own requests and what waits for your approval, so jit-bot shows it only in your personal chat with the bot: open jit-bot under Apps (or chat with it) and send "home".' }), 'jit-bot home'));
      return true;
    }
    await (wants === 'home' ? this.sendHome(context, host, principal) : this.sendForm(context, host, principal));
    return true;
  }

  /** Sends `principal` their home card in this turn's conversation and remembers it for refreshHome. */
  async sendHome(context: TurnContext, host: FormHost, principal: PrincipalId): Promise<void> {
    const sent = await context.sendActivity(activityOf(await homeCardFor(host, principal), 'jit-bot home'));
    if (!sent?.id) return;
    const ref = TurnContext.getConversationReference(context.activity);
    await this.deps.redis.set(this.deps.key('home', principal), JSON.stringify({ ref, activityId: sent.id }), 'EX', REF_TTL_S);
    await this.viewers.mark(principal);
  }

  /** The request form, answered in this turn's conversation. */
  async sendForm(context: TurnContext, host: FormHost, principal: PrincipalId): Promise<void> {
    const timeZone = context.activity.localTimezone;
    await context.sendActivity(activityOf(formCardFor(host, principal, {}, {}, timeZone || undefined), 'Request access'));
  }

  /** Updates the home card last posted to `principal` (none posted: nothing to do). */
  async refreshHome(principal: PrincipalId): Promise<void> {
    const host = this.deps.host();
    if (!host) return;
    const raw = await this.deps.redis.get(this.deps.key('home', principal));
    if (!raw) return this.viewers.forget(principal);
    const { ref, activityId } = JSON.parse(raw) as { ref: Partial<ConversationReference>; activityId: string };
    const card = await homeCardFor(host, principal);
    await this.deps.proactive(ref, (ctx) => ctx.updateActivity({ ...activityOf(card, 'jit-bot home'), id: activityId }));
  }

  /**
   * A click on the form or the home card: the card that replaces it (a form asked for from the home
   * card comes as a new message). Undefined for any other click (the approval cards' own).
   */
  async onAction(context: TurnContext, principal: PrincipalId, verb: string, data: Record<string, unknown>): Promise<{ card?: CardJson; text?: string } | undefined> {
    const host = this.deps.host();
    if (!host || !isFormAction(verb, data)) return undefined;
    const a = context.activity;
    // A submission delivered twice (the same activity) creates one request: the second gets the first's answer.
    const once = verb === FORM_VERBS.submit && a.id ? this.deps.key('submitted', a.conversation.id, a.id) : undefined;
    if (once && (await this.deps.redis.set(once, '', 'EX', 3600, 'NX')) !== 'OK') {
      const first = await this.deps.redis.get(once);
      return first ? { card: JSON.parse(first) as CardJson } : { text: 'This form is being submitted; its answer follows.' };
    }
    try {
      const result = await runFormAction(host, principal, verb, data, { ...(a.localTimezone ? { timeZone: a.localTimezone } : {}), replyTo: a.conversation.id });
      if (result.kind === 'message') return { text: result.text };
      if (result.form) await context.sendActivity(activityOf(result.form, 'Request access'));
      if (once) await this.deps.redis.set(once, JSON.stringify(result.card), 'EX', 3600);
      return { card: result.card };
    } catch (err) {
      if (once) await this.deps.redis.del(once).catch(() => 0); // nothing was answered: a retry runs again
      this.deps.log.error('teams: form action failed', { err, verb });
      return { text: '✗ Something went wrong on our side; nothing was changed.' };
    }
  }
}
