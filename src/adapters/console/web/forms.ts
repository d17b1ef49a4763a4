/// <reference lib="dom" />
// The console page's request form and home view: the Teams cards (the server renders them), their
// clicks sent to /console/api/action, which runs them as a Teams invoke would (form-actions.ts).
import type { ActionResult, Card, CardView, ExecuteAction } from './types.js';

/** What the forms use of the page (app.ts). */
export interface FormsUi {
  who: HTMLSelectElement;
  api<T>(path: string, body?: unknown): Promise<T>;
  makeCard(json: Card): CardView;
  draw(view: CardView, json: Card): void;
  addToChat(node: Node): void;
  /** Follows a card about a request (its badge, its countdown). */
  track(view: CardView): void;
  /** A message beside a card (a refused click). */
  toast(view: CardView, text: string): void;
  refresh(): Promise<void>;
}

/** The form's and the home card's clicks (verbs jit…, or data marked home) take the form path, as a Teams invoke does. */
const FORM_VERBS = ['jitForm', 'jitFormChoices', 'jitRequest', 'jitHome'];

export function consoleForms(ui: FormsUi) {
  const { who, api } = ui;
  let home: CardView | undefined;
  let homeFor = '';
  /** The outcome of the last click on the home card (its note line), kept while the card is redrawn. */
  let homeNote: { principal: string; text: string } | undefined;

  const isFormAction = (a: ExecuteAction) => FORM_VERBS.includes(a.verb ?? '') || (a.data as { home?: unknown } | undefined)?.home === true;

  async function click(action: ExecuteAction, view: CardView): Promise<void> {
    const data = { ...((action.data as Record<string, unknown> | undefined) ?? {}) };
    // The renderer merges the card's input values into the data, as Teams does.
    for (const input of view.card?.getAllInputs() ?? []) if (input.id && input.value !== undefined) data[input.id] = input.value;
    const result = await api<ActionResult>('/console/api/action', { as: who.value, verb: action.verb, data, timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone });
    if (result.kind === 'message') ui.toast(view, result.text);
    else {
      ui.draw(view, result.card);
      if (view === home) homeNote = { principal: who.value, text: result.note ?? '' };
      const id = result.created?.request?.id;
      if (id) {
        view.requestId = id;
        view.holder.dataset.request = id;
        ui.track(view);
      }
      if (result.form) ui.addToChat(ui.makeCard(result.form).holder);
    }
    await ui.refresh();
  }

  /** The request form as a new message in the chat. */
  async function showForm(): Promise<void> {
    const { card } = await api<{ card: Card }>(`/console/api/form?as=${encodeURIComponent(who.value)}`);
    const view = ui.makeCard(card);
    view.holder.classList.add('form');
    ui.addToChat(view.holder);
  }

  /** The home card in its panel, drawn again whenever something changes (and for the principal selected). */
  async function showHome(open = false): Promise<void> {
    const panel = document.querySelector<HTMLElement>('#homePanel')!;
    if (open) panel.hidden = false;
    if (panel.hidden) return;
    const principal = who.value;
    const note = homeNote?.principal === principal && homeNote.text ? `&note=${encodeURIComponent(homeNote.text)}` : '';
    const { card } = await api<{ card: Card }>(`/console/api/home?as=${encodeURIComponent(principal)}${note}`);
    if (principal !== who.value) return;
    // The "As of" line changes every time: compare without it.
    const same = (a: string) => a.replace(/As of [^.]*\./, '');
    if (!home || homeFor !== principal) {
      home = ui.makeCard(card);
      homeFor = principal;
      document.querySelector<HTMLElement>('#home')!.replaceChildren(home.holder);
    } else if (same(home.json) !== same(JSON.stringify(card))) ui.draw(home, card);
  }

  return { isFormAction, click, showForm, showHome };
}
