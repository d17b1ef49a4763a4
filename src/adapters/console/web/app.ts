/// <reference lib="dom" />
// The console page's script (bundled by esbuild at server start). Renders the bot's Adaptive
// Cards with the adaptivecards renderer loaded by the page (window.AdaptiveCards); Action.Execute
// buttons post to the REST API's /api/v1/card-actions as the selected principal, like a Teams invoke;
// commands go to /api/v1/commands.

interface ExecuteAction {
  verb?: string;
  data?: unknown;
}
interface RenderedCard {
  parse(json: unknown): void;
  render(): HTMLElement | undefined;
  onExecuteAction: (action: ExecuteAction) => void;
}
interface AdaptiveCardsGlobal {
  AdaptiveCard: new () => RenderedCard;
}
type Card = Record<string, unknown>;
type ActionResult = { kind: 'card'; card: Card } | { kind: 'message'; text: string };
interface State {
  now: number;
  pending: Array<{ id: string; card: Card }>;
  active: Array<{ id: string; target: string; requester: string; expiresAt: number; connections: Array<{ command: string }> }>;
  rules: Array<{ name: string; scope: string; priority: number; sourcePrefix: string; destinationPort: number; protocol: string; expiresAt: number; access?: string }>;
  audit: Array<{ time: number; requestId: string; action: string; actor: string }>;
}

const AC = (window as unknown as { AdaptiveCards: AdaptiveCardsGlobal }).AdaptiveCards;
const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const who = $<HTMLSelectElement>('#who');
const chat = $<HTMLDivElement>('#chat');
let skew = 0;
let active: State['active'] = [];
let shown = new Map<string, { json: string; el: HTMLElement }>();

async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function text(s: string): Text {
  return document.createTextNode(s);
}

/** Renders a card; its buttons act as the principal selected when clicked. */
function renderCard(card: Card): HTMLElement {
  const holder = document.createElement('div');
  holder.className = 'card';
  const draw = (json: Card) => {
    const ac = new AC.AdaptiveCard();
    ac.onExecuteAction = (action) => void click(action, draw, holder);
    ac.parse(json);
    holder.replaceChildren(ac.render() ?? text('(card could not be rendered)'));
  };
  draw(card);
  return holder;
}

async function click(action: ExecuteAction, redraw: (c: Card) => void, holder: HTMLElement): Promise<void> {
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
    redraw(result.card);
    // Keep the outcome in the chat too: the pending panel drops a request once it is decided.
    addToChat(text(`${who.value}: ${action.verb ?? ''}`), true);
    addToChat(renderCard(result.card));
  } else {
    const note = document.createElement('div');
    note.className = 'toast';
    note.setAttribute('role', 'status');
    note.append(text(result.text));
    holder.after(note);
  }
  await refresh();
}

function addToChat(node: Node, mine = false): void {
  const row = document.createElement('div');
  row.className = mine ? 'msg me' : 'msg';
  if (mine) {
    const bubble = document.createElement('span');
    bubble.append(node);
    row.append(bubble);
  } else row.append(node);
  chat.append(row);
  chat.scrollTop = chat.scrollHeight;
}

function fill(table: string, rows: string[][]): void {
  const body = $<HTMLTableSectionElement>(`${table} tbody`);
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        td.append(text(c));
        tr.append(td);
      }
      return tr;
    }),
  );
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);

function drawActive(): void {
  const now = Date.now() + skew;
  fill('#active', active.map((g) => [g.id, g.target, g.requester, `${Math.max(0, Math.round((g.expiresAt - now) / 1000))} s`]));
}

async function refresh(): Promise<void> {
  if (!who.value) return;
  const s = await api<State>(`/console/api/state?as=${encodeURIComponent(who.value)}`);
  skew = s.now - Date.now();
  // Keep a card that did not change (an approver may be typing a reason in it).
  const pending = $<HTMLDivElement>('#pending');
  const next = new Map<string, { json: string; el: HTMLElement }>();
  for (const p of s.pending) {
    const json = JSON.stringify(p.card);
    const kept = shown.get(p.id);
    next.set(p.id, kept && kept.json === json ? kept : { json, el: renderCard(p.card) });
  }
  shown = next;
  pending.replaceChildren(...(s.pending.length ? [...next.values()].map((x) => x.el) : [text('Nothing is waiting for approval.')]));
  active = s.active;
  drawActive();
  fill('#rules', s.rules.map((r) => [r.name, String(r.priority), r.sourcePrefix, `${r.destinationPort}/${r.protocol}`, r.expiresAt ? time(r.expiresAt) : '-']));
  fill('#audit', s.audit.map((e) => [time(e.time), e.requestId, e.action, e.actor]));
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
  $<HTMLFormElement>('#say').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>('#text');
    const command = input.value.trim();
    if (!command) return;
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
        const r = (await res.json()) as { card?: Card; error?: string };
        addToChat(r.card ? renderCard(r.card) : text(r.error ?? `HTTP ${res.status}`));
      })
      .then(() => refresh());
  });
  const events = new EventSource('/console/api/events');
  let timer: number | undefined;
  events.onmessage = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), 100);
  };
  setInterval(drawActive, 1000);
  await refresh();
  document.body.dataset.ready = 'true';
}

void main();
