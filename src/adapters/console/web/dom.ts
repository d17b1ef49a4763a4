/// <reference lib="dom" />
// The console page's building blocks (app.ts): the Adaptive Cards renderer's host config matching
// the page, element helpers, and the copy buttons of connection lines.

/** The renderer's host config: the page's fonts and colours, so a card looks part of the page. */
export function hostConfig(HostConfig: new (json: unknown) => unknown): unknown {
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
  return new HostConfig({
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
export function text(s: string): Text {
  return document.createTextNode(s);
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.append(...children);
  return e;
}

// ---- copy buttons ----
export function copyButton(command: string, compact = false): HTMLButtonElement {
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

export function commandLine(command: string, compact = false): HTMLElement {
  const code = el('code', 'cmd', command);
  code.title = command;
  return el('div', 'line', code, copyButton(command, compact));
}

/** A GET (no body) or POST (JSON body) to the server; its JSON answer. */
export async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Fills the table `table` (a selector) with `rows`, or one line saying `empty`. */
export function fill(table: string, rows: Array<Array<string | Node>>, empty: string): void {
  const body = document.querySelector(`${table} tbody`) as HTMLTableSectionElement;
  const cols = body.closest('table')!.querySelectorAll('th').length;
  if (!rows.length) {
    const td = el('td', 'empty', empty);
    td.colSpan = cols;
    body.replaceChildren(el('tr', '', td));
    return;
  }
  body.replaceChildren(...rows.map((cells) => el('tr', '', ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : el('td', '', c))))));
}

/** Puts `wanted` in `parent` in order, moving or removing nothing that stays (focus survives). */
export function reconcile(parent: HTMLElement, wanted: HTMLElement[]): void {
  const keep = new Set<Node>(wanted);
  for (const child of [...parent.childNodes]) if (!keep.has(child)) child.remove();
  let at: ChildNode | null = parent.firstChild;
  for (const node of wanted) {
    if (node === at) at = node.nextSibling;
    else parent.insertBefore(node, at);
  }
}
