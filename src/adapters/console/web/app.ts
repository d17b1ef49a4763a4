/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The console page's script (bundled by esbuild at server start). Renders the bot's Adaptive
// Cards with the adaptivecards renderer loaded by the page (window.AdaptiveCards), with a markdown
// processor and a host config matching the page; Action.Execute buttons post to the REST API's
// /api/v1/card-actions as the selected principal, like a Teams invoke; commands go to
// /api/v1/commands. Each card about a request carries a state badge that follows the request, and
// an open grant's connection line with a copy button.
import { hms, STATUS_LABEL } from './format.js';
import { cardMarkdown } from './markdown.js';
import { consoleForms } from './forms.js';
import type { ActionResult, Card, CardView, ExecuteAction, RenderedCard } from './types.js';

interface AdaptiveCardsGlobal {
  AdaptiveCard: (new () => RenderedCard) & { onProcessMarkdown?: (text: string, result: { didProcess: boolean; outputHtml?: string }) => void };
  HostConfig: new (json: unknown) => unknown;
}
interface RequestInfo {
  id: string;
  status: string;
  version: number;
  approvalExpiresAt: number;
  startAt?: number;
  expiresAt?: number;
}
interface Grant {
  id: string;
  target: string;
  requester: string;
  expiresAt: number;
  connections: Array<{ command: string }>;
}
interface State {
  now: number;
  pending: Array<{ id: string; card: Card }>;
  active: Grant[];
  requests: RequestInfo[];
  rules: Array<{ name: string; scope: string; priority: number; sourcePrefix: string; destinationPort: number; protocol: string; expiresAt: number; access?: string }>;
  audit: Array<{ time: number; requestId: string; action: string; actor: string }>;
}
interface CommandAnswer {
  card?: Card;
  error?: string;
  reply?: { request?: { id: string }; connections?: Array<{ command: string }> };
}

const AC = (window as unknown as { AdaptiveCards: AdaptiveCardsGlobal }).AdaptiveCards;
const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const who = $<HTMLSelectElement>('#who');
const chat = $<HTMLDivElement>('#chat');
let skew = 0;
let requests = new Map<string, RequestInfo>();
let grants = new Map<string, Grant>();

// Card text is markdown (the Teams subset); raw HTML is never passed through.
AC.AdaptiveCard.onProcessMarkdown = (md, result) => {
  result.outputHtml = cardMarkdown(md);
  result.didProcess = true;
};

/** The renderer's host config: the page's fonts and colours, so a card looks part of the page. */
function hostConfig(): unknown {
  const font = getComputedStyle(document.body).fontFamily;
  const mono = getComputedStyle(document.documentElement).getPropertyValue('--mono').trim() || 'monospace';
  const colors = {
    default: { default: '#1F2937', subtle: '#6B7280' },
    dark: { default: '#111827', subtle: '#374151' },
    light: { default: '#FFFFFF', subtle: '#E5E7EB' },
    accent: { default: '#1D4ED8', subtle: '#2563EB' },
    good: { default: '#15803D', subtle: '#16A34A' },
    warning: { default: '#B45309', subtle: '#D97706' },
    attention: { default: '#B91C1C', subtle: '#DC2626' },
  };
  return new AC.HostConfig({
    fontFamily: font,
    fontTypes: {
      default: { fontFamily: font, fontSizes: { small: 12, default: 14, medium: 16, large: 20, extraLarge: 24 }, fontWeights: { lighter: 300, default: 400, bolder: 650 } },
      monospace: { fontFamily: mono, fontSizes: { small: 12, default: 13, medium: 14, large: 18, extraLarge: 22 }, fontWeights: { lighter: 300, default: 400, bolder: 650 } },
    },
    spacing: { small: 4, default: 8, medium: 14, large: 20, extraLarge: 28, padding: 14 },
    separator: { lineThickness: 1, lineColor: '#E5E7EB' },
    containerStyles: {
      default: { backgroundColor: '#FFFFFF', foregroundColors: colors },
      emphasis: { backgroundColor: '#F8FAFC', foregroundColors: colors },
    },
    actions: { maxActions: 5, spacing: 'default', buttonSpacing: 8, actionsOrientation: 'horizontal', actionAlignment: 'left', showCard: { actionMode: 'inline', inlineTopMargin: 8 } },
    factSet: { title: { color: 'default', isSubtle: true, weight: 'bolder', size: 'default', wrap: true, maxWidth: 130 }, value: { color: 'default', size: 'default', wrap: true }, spacing: 12 },
  });
}
const HOST = hostConfig();

async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function text(s: string): Text {
  return document.createTextNode(s);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.append(...children);
  return e;
}

// ---- the chat stays scrolled to the newest message unless the reader scrolled up ----
let pinned = true;
chat.addEventListener('scroll', () => {
  pinned = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 24;
});
function keepPinned(): void {
  if (pinned) chat.scrollTop = chat.scrollHeight;
}
new ResizeObserver(keepPinned).observe(chat);

// ---- copy buttons ----
function copyButton(command: string, compact = false): HTMLButtonElement {
  const b = el('button', compact ? 'copy icon' : 'copy', compact ? '' : 'Copy');
  b.type = 'button';
  b.title = 'Copy to the clipboard';
  b.setAttribute('aria-label', `Copy ${command}`);
  b.dataset.copy = command;
  b.addEventListener('click', () => void copy(command, b));
  return b;
}

async function copy(value: string, button: HTMLButtonElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(value);
  } catch {
    // No clipboard API (an insecure origin): copy through a selection.
    const area = el('textarea');
    area.value = value;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  const compact = button.classList.contains('icon');
  if (!compact) button.textContent = 'Copied';
  button.classList.add('done');
  setTimeout(() => {
    if (!compact) button.textContent = 'Copy';
    button.classList.remove('done');
  }, 1500);
}

function commandLine(command: string, compact = false): HTMLElement {
  const code = el('code', 'cmd', command);
  code.title = command;
  return el('div', 'line', code, copyButton(command, compact));
}

// ---- cards ----
const chatCards: CardView[] = [];

/**
 * Draws `json` into the view. Whatever someone typed in the card's inputs, and the focus and
 * caret, carry over to the new rendering: a live update must not drop a reason being typed.
 */
function draw(view: CardView, json: Card): void {
  const values = new Map<string, string>();
  let focus: { id: string; start: number | null; end: number | null } | undefined;
  for (const input of view.card?.getAllInputs() ?? []) {
    if (!input.id) continue;
    if (input.value !== undefined) values.set(input.id, input.value);
    const control = input.renderedInputControlElement;
    if (control && control === document.activeElement) {
      const c = control as HTMLInputElement | HTMLTextAreaElement;
      focus = { id: input.id, start: c.selectionStart ?? null, end: c.selectionEnd ?? null };
    }
  }
  const ac = new AC.AdaptiveCard();
  ac.hostConfig = HOST;
  ac.onExecuteAction = (action) => void click(action, view);
  ac.parse(json);
  for (const input of ac.getAllInputs()) {
    const v = input.id ? values.get(input.id) : undefined;
    if (v !== undefined) input.defaultValue = v;
  }
  const rendered = ac.render() ?? el('div', 'empty', '(card could not be rendered)');
  view.body.replaceChildren(rendered);
  view.card = ac;
  view.json = JSON.stringify(json);
  for (const tb of rendered.querySelectorAll<HTMLElement>('.ac-textBlock')) {
    if (/mono/i.test(tb.style.fontFamily)) tb.classList.add('mono');
    const own = tb.textContent?.trim() ?? '';
    if (view.ownCommands.includes(own)) {
      const line = el('div', 'line');
      tb.replaceWith(line);
      line.append(tb, copyButton(own));
      tb.style.flex = '1';
    }
  }
  if (focus) {
    const input = ac.getAllInputs().find((i) => i.id === focus!.id);
    const control = input?.renderedInputControlElement as HTMLInputElement | HTMLTextAreaElement | undefined;
    if (control) {
      control.focus({ preventScroll: true });
      if (focus.start !== null && focus.end !== null) control.setSelectionRange(focus.start, focus.end);
    }
  }
  decorate(view);
}

function makeCard(json: Card, opts: { requestId?: string; commands?: string[] } = {}): CardView {
  const refresh = (json.refresh as { action?: { data?: { requestId?: string; scope?: string } } } | undefined)?.action?.data;
  const view: CardView = {
    holder: el('div', 'card'),
    bar: el('div', 'bar'),
    body: el('div', 'body'),
    connect: el('div', 'connect'),
    json: '',
    ownCommands: opts.commands ?? [],
    ...(opts.requestId ?? refresh?.requestId ? { requestId: opts.requestId ?? refresh?.requestId } : {}),
    ...(refresh?.scope ? { scope: refresh.scope } : {}),
  };
  view.holder.append(view.bar, view.body, view.connect);
  if (view.requestId) view.holder.dataset.request = view.requestId;
  draw(view, json);
  return view;
}

/** The state badge, the countdown and (for an open grant) the connection lines with copy buttons. */
function decorate(view: CardView): void {
  const info = view.requestId ? requests.get(view.requestId) : undefined;
  if (!info) return;
  const key = `${info.status}|${info.expiresAt ?? ''}|${info.startAt ?? ''}|${grants.get(info.id)?.connections.map((c) => c.command).join(' ') ?? ''}`;
  if (view.holder.dataset.shown === key) return;
  view.holder.dataset.shown = key;
  view.holder.dataset.status = info.status;
  const badge = el('span', `badge b-${info.status}`, STATUS_LABEL[info.status] ?? info.status);
  badge.setAttribute('role', 'status');
  const parts: Array<Node | string> = [badge];
  const until = (label: string, at: number) => parts.push(el('span', 'when', `${label} `, countdown(at)));
  if (info.status === 'pending') until('offer expires in', info.approvalExpiresAt);
  else if (info.status === 'approved' && info.startAt) until('opens in', info.startAt);
  else if (info.status === 'active' && info.expiresAt) until('closes in', info.expiresAt);
  parts.push(el('span', 'rid', info.id));
  view.bar.replaceChildren(...parts);
  const commands = info.status === 'active' ? grants.get(info.id)?.connections.map((c) => c.command) ?? [] : [];
  const fresh = commands.filter((c) => !view.ownCommands.includes(c));
  view.connect.replaceChildren(...(fresh.length ? [el('span', 'label', 'Connect'), ...fresh.map((c) => commandLine(c))] : []));
  keepPinned();
}

function countdown(at: number): HTMLElement {
  const span = el('span', 'countdown');
  span.dataset.until = String(at);
  span.textContent = hms(at - (Date.now() + skew));
  return span;
}

function tick(): void {
  const now = Date.now() + skew;
  for (const span of document.querySelectorAll<HTMLElement>('[data-until]')) span.textContent = hms(Number(span.dataset.until) - now);
}

/** The request form and the home view (forms.ts), on this page's cards and chat. */
const forms = consoleForms({
  who,
  api,
  makeCard: (json) => makeCard(json),
  draw,
  addToChat: (node) => addToChat(node),
  track: (view) => chatCards.push(view),
  toast: (view, message) => {
    const note = el('div', 'toast', message);
    note.setAttribute('role', 'status');
    view.holder.after(note);
    keepPinned();
  },
  refresh: () => refresh(),
});
const { showForm, showHome } = forms;

async function click(action: ExecuteAction, view: CardView): Promise<void> {
  if (forms.isFormAction(action)) return forms.click(action, view);
  // Card buttons go through the REST API's Universal Actions endpoint, as the selected principal.
  const res = await fetch('/api/v1/card-actions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-jit-act-as': who.value },
    body: JSON.stringify({ verb: action.verb, data: action.data ?? {} }),
  });
  // A refusal with a status (404: no such request you can see; 429) still says why, as a message.
  const result = (await res.json().catch(() => null)) as ActionResult | null;
  if (!result || (!res.ok && result.kind !== 'message')) throw new Error(`/api/v1/card-actions: HTTP ${res.status}`);
  if (result.kind === 'card') {
    draw(view, result.card);
    // Keep the outcome in the chat too: the pending panel drops a request once it is decided.
    addToChat(text(`${who.value}: ${action.verb ?? ''}`), true);
    const outcome = makeCard(result.card);
    chatCards.push(outcome);
    addToChat(outcome.holder);
  } else {
    const note = el('div', 'toast', result.text);
    note.setAttribute('role', 'status');
    view.holder.after(note);
    keepPinned();
  }
  await refresh();
}

/** Redraws an approval card in the chat as the request is now (the refresh verb, as the viewer). */
async function refreshCard(view: CardView): Promise<void> {
  const res = await fetch('/api/v1/card-actions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-jit-act-as': who.value },
    body: JSON.stringify({ verb: 'refresh', data: { requestId: view.requestId, scope: view.scope ?? 'request' } }),
  });
  if (!res.ok) return;
  const result = (await res.json()) as ActionResult;
  if (result.kind === 'card' && JSON.stringify(result.card) !== view.json) draw(view, result.card);
}

function addToChat(node: Node, mine = false): void {
  const row = el('div', mine ? 'msg me' : 'msg');
  if (mine) row.append(el('span', '', node));
  else row.append(node);
  chat.append(row);
  pinned = true;
  keepPinned();
}

function fill(table: string, rows: Array<Array<string | Node>>, empty: string): void {
  const body = $<HTMLTableSectionElement>(`${table} tbody`);
  const cols = body.closest('table')!.querySelectorAll('th').length;
  if (!rows.length) {
    const td = el('td', 'empty', empty);
    td.colSpan = cols;
    body.replaceChildren(el('tr', '', td));
    return;
  }
  body.replaceChildren(...rows.map((cells) => el('tr', '', ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : el('td', '', c))))));
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** Puts `wanted` in `parent` in order, moving or removing nothing that stays (focus survives). */
function reconcile(parent: HTMLElement, wanted: HTMLElement[]): void {
  const keep = new Set<Node>(wanted);
  for (const child of [...parent.childNodes]) if (!keep.has(child)) child.remove();
  let at: ChildNode | null = parent.firstChild;
  for (const node of wanted) {
    if (node === at) at = node.nextSibling;
    else parent.insertBefore(node, at);
  }
}

let pendingShown = new Map<string, CardView>();
let pendingFor = '';
const nothingPending = el('div', 'empty', 'Nothing is waiting for approval.');
let activeShown = '';
let refreshes = 0;
let applied = 0;

async function refresh(): Promise<void> {
  const principal = who.value;
  if (!principal) return;
  const seq = ++refreshes;
  const s = await api<State>(`/console/api/state?as=${encodeURIComponent(principal)}`);
  // Answers can arrive out of order (an event and a principal switch at once): apply only the
  // newest, and only for the principal still selected.
  if (seq < applied || principal !== who.value) return;
  applied = seq;
  skew = s.now - Date.now();
  requests = new Map(s.requests.map((r) => [r.id, r]));
  grants = new Map(s.active.map((g) => [g.id, g]));

  // Pending: keep each card element (an approver may be typing a reason in it); a card whose
  // content changed is redrawn in place, keeping what was typed.
  if (pendingFor !== principal) pendingShown = new Map();
  pendingFor = principal;
  const next = new Map<string, CardView>();
  for (const p of s.pending) {
    const kept = pendingShown.get(p.id);
    if (kept) {
      if (kept.json !== JSON.stringify(p.card)) draw(kept, p.card);
      next.set(p.id, kept);
    } else next.set(p.id, makeCard(p.card, { requestId: p.id }));
  }
  pendingShown = next;
  reconcile($<HTMLDivElement>('#pending'), next.size ? [...next.values()].map((v) => v.holder) : [nothingPending]);
  for (const v of next.values()) decorate(v);

  // Chat cards follow their request: the badge always, an approval card's content too.
  for (const v of chatCards) {
    decorate(v);
    const info = v.requestId ? requests.get(v.requestId) : undefined;
    if (v.scope && info && info.version !== v.seenVersion) {
      v.seenVersion = info.version;
      void refreshCard(v);
    }
  }

  const activeKey = JSON.stringify(s.active);
  if (activeKey !== activeShown) {
    activeShown = activeKey;
    fill(
      '#active',
      s.active.map((g) => [g.id, el('span', '', el('strong', '', g.target), el('span', 'who', g.requester)), countdown(g.expiresAt), el('td', 'lines', ...g.connections.map((c) => commandLine(c.command, true)))]),
      'No grant is open.',
    );
  }
  void showHome();
  fill('#rules', s.rules.map((r) => [r.name, String(r.priority), r.sourcePrefix, `${r.destinationPort}/${r.protocol}`, r.expiresAt ? time(r.expiresAt) : '-']), 'No rule is open.');
  fill('#audit', s.audit.map((e) => [time(e.time), e.requestId, e.action, e.actor]), 'Nothing in the last hour.');
}

async function main(): Promise<void> {
  const { principals } = await api<{ principals: Array<{ id: string; roles: string }> }>('/console/api/principals');
  for (const p of principals) {
    const o = document.createElement('option');
    o.value = p.id;
    o.textContent = `${p.id} (${p.roles})`;
    who.append(o);
  }
  who.addEventListener('change', () => void refresh());
  $<HTMLButtonElement>('#formBtn').addEventListener('click', () => void showForm());
  $<HTMLButtonElement>('#homeBtn').addEventListener('click', () => void showHome(true));
  $<HTMLFormElement>('#say').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>('#text');
    const command = input.value.trim();
    // `jit` alone (or nothing, or `request`) is the form; `home` the home card, as in Teams.
    if (/^(jit|request|form)?$/i.test(command)) {
      input.value = '';
      return void showForm();
    }
    if (/^(jit\s+)?home$/i.test(command)) {
      input.value = '';
      return void showHome(true);
    }
    input.value = '';
    addToChat(text(`${who.value}: ${command}`), true);
    // Commands go through the REST API (the local channel names the principal), asking for the
    // reply's Adaptive Card; a refused command answers 4xx with its card too.
    void fetch('/api/v1/commands', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/vnd.microsoft.card.adaptive+json', 'x-jit-act-as': who.value },
      body: JSON.stringify({ text: command }),
    })
      .then(async (res) => {
        const r = (await res.json()) as CommandAnswer;
        if (!r.card) return addToChat(el('span', 'plain', r.error ?? `HTTP ${res.status}`));
        const requestId = r.reply?.request?.id;
        const view = makeCard(r.card, { ...(requestId ? { requestId } : {}), commands: r.reply?.connections?.map((c) => c.command) ?? [] });
        if (requestId) chatCards.push(view);
        addToChat(view.holder);
      })
      .then(() => refresh());
  });
  const events = new EventSource('/console/api/events');
  let timer: number | undefined;
  events.onmessage = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), 100);
  };
  setInterval(tick, 1000);
  await refresh();
  document.body.dataset.ready = 'true';
}

void main();
