// The chat grammar, the same for Slack, Teams, the CLI and the console. Pure.
//
//   rdp|ssh|winrm <vm> <duration> [from <address|cidr|*>] [at <HH:MM|date-time>] [reason "<text>"]
//   port <port>[/tcp|/udp][,<port>…] <vm> <duration> [from …] [reason …]
//   list [mine|pending|active|all] · status <id> · revoke|cancel <id> · extend <id> <duration>
//   approve <id> · deny <id> [reason "<text>"] · help
import type { AccessCommand, Command } from './command.js';
import { looksLikeDuration, parseDuration } from './duration.js';
import { JitError, isJitError } from './errors.js';
import { portLabel } from './format.js';
import { parseTargetName, REQUEST_ID_RE, TARGET_NAME_RE } from './ids.js';
import { parseSource } from './source.js';
import type { PortSpec, Protocol } from './types.js';
import { checkPorts, checkText, MAX_PORTS, MAX_TEXT_LENGTH } from './validate.js';

export const VERB_PORTS: Record<'rdp' | 'ssh' | 'winrm', PortSpec[]> = {
  rdp: [{ port: 3389, protocol: 'tcp' }],
  ssh: [{ port: 22, protocol: 'tcp' }],
  winrm: [
    { port: 5985, protocol: 'tcp' },
    { port: 5986, protocol: 'tcp' },
  ],
};

const COMMANDS = ['rdp', 'ssh', 'winrm', 'port', 'list', 'status', 'revoke', 'cancel', 'extend', 'approve', 'deny', 'policy', 'vms', 'audit', 'help'] as const;
const LIST_SCOPES = ['mine', 'pending', 'active', 'all'] as const;
export const MAX_REASON_LENGTH = MAX_TEXT_LENGTH;
const TARGET_RE = TARGET_NAME_RE;
/** Ports one request may name (after ranges and lists are expanded). */
export const MAX_PORTS_PER_REQUEST = MAX_PORTS;
/** The longest command accepted (characters). */
export const MAX_INPUT_LENGTH = 2000;
const MAX_INPUT = MAX_INPUT_LENGTH;
/** `14:00`, or an ISO date-time `2026-11-25T14:00[:ss][Z|±hh:mm]`. */
export const START_RE = /^(([01]?\d|2[0-3]):[0-5]\d|\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(Z|[+-]\d{2}:\d{2})?)$/;

interface Token {
  text: string;
  quoted: boolean;
}

/** Splits on white space; "double", 'single' and “smart” quotes group words. */
export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  const s = input.replace(/[\u201c\u201d\u201e\u00ab\u00bb]/g, '"').replace(/[\u2018\u2019\u201a]/g, "'");
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = s.indexOf(c, i + 1);
      if (end === -1) throw new JitError('parse', `a quote (${c}) is not closed`, 'ssh vm1 1h reason "INC-4711 disk full"');
      tokens.push({ text: s.slice(i + 1, end), quoted: true });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < s.length && !/\s/.test(s[j]!)) j++;
    tokens.push({ text: s.slice(i, j), quoted: false });
    i = j;
  }
  return tokens;
}

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** The closest known word within two edits, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  return best && bestD <= (word.length <= 3 ? 1 : 2) ? best : undefined;
}

const AUDIT_EXAMPLE = 'audit vm1 since 7d';
const EXAMPLES: Record<string, string> = {
  rdp: 'rdp vm1 2h',
  ssh: 'ssh vm1 30m from 203.0.113.7',
  winrm: 'winrm vm1 1h',
  port: 'port 8443/tcp vm1 45m',
  list: 'list',
  status: 'status r7k2m9q4xw',
  revoke: 'revoke r7k2m9q4xw',
  cancel: 'cancel r7k2m9q4xw',
  extend: 'extend r7k2m9q4xw 1h',
  approve: 'approve r7k2m9q4xw',
  deny: 'deny r7k2m9q4xw reason "not in a change window"',
  policy: 'policy enable vm1 3389',
  vms: 'vms',
  audit: 'audit vm1 since 7d',
  help: 'help',
};

export function parseCommand(input: string): Command {
  if (input.length > MAX_INPUT) throw new JitError('parse', `the command is too long (${input.length} characters; at most ${MAX_INPUT})`, 'help');
  // Tabs and line breaks separate words; every other C0 / C1 control, DEL and the bidirectional
  // overrides are refused (free text inside is held to stricter rules: see validate.ts).
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(input)) {
    throw new JitError('parse', 'the command contains control characters', 'help');
  }
  const tokens = tokenize(input);
  const first = tokens[0];
  if (first && !first.quoted && /^\/?jit$/i.test(first.text)) tokens.shift();
  const head = tokens.shift();
  if (!head || ((head.text === '?' || head.text.toLowerCase() === 'help') && !head.quoted)) return { kind: 'help' };
  const word = head.text.toLowerCase();
  switch (word) {
    case 'rdp':
    case 'ssh':
    case 'winrm':
      return parseAccess(word, VERB_PORTS[word], tokens);
    case 'port': {
      const spec = tokens.shift();
      if (!spec) throw new JitError('parse', 'port needs a port (8443 or 8443/tcp), a VM name and a duration', EXAMPLES.port);
      return parseAccess('port', parsePorts(spec.text), tokens);
    }
    case 'list': {
      const scope = tokens.shift();
      if (!scope) return { kind: 'list', scope: 'mine' };
      const s = scope.text.toLowerCase();
      if (!(LIST_SCOPES as readonly string[]).includes(s)) {
        throw new JitError('parse', `list shows ${LIST_SCOPES.join(', ')}, not "${scope.text}"`, 'list pending');
      }
      noMore(tokens, 'list');
      return { kind: 'list', scope: s as (typeof LIST_SCOPES)[number] };
    }
    case 'status':
    case 'revoke':
    case 'cancel':
    case 'approve': {
      const requestId = takeId(tokens, word);
      noMore(tokens, word);
      return { kind: word === 'cancel' ? 'revoke' : word, requestId };
    }
    case 'extend': {
      const requestId = takeId(tokens, word);
      const d = tokens.shift();
      if (!d) throw new JitError('parse', 'extend needs a request id and how much longer', `extend ${requestId} 1h`);
      const durationMs = withExample(() => parseDuration(d.text), `extend ${requestId} 1h`);
      noMore(tokens, word);
      return { kind: 'extend', requestId, durationMs };
    }
    case 'deny': {
      const requestId = takeId(tokens, word);
      if (tokens[0] && !tokens[0].quoted && tokens[0].text.toLowerCase() === 'reason') tokens.shift();
      const reason = checkText('reason', tokens.map((t) => t.text).join(' '), `deny ${requestId} reason "not in a change window"`);
      return reason ? { kind: 'deny', requestId, reason } : { kind: 'deny', requestId };
    }
    case 'vms':
    case 'inventory':
      noMore(tokens, 'vms');
      return { kind: 'vms' };
    case 'audit': {
      // audit [target] [since <duration>]: the activity of the last 7 days by default.
      let target: string | undefined;
      let sinceMs = 7 * 24 * 3600_000;
      while (tokens.length > 0) {
        const t = tokens.shift()!;
        if (!t.quoted && t.text.toLowerCase() === 'since') {
          const d = tokens.shift();
          if (!d) throw new JitError('parse', 'since needs a duration, such as 7d or 24h', AUDIT_EXAMPLE);
          sinceMs = withExample(() => parseDuration(d.text), AUDIT_EXAMPLE);
        } else if (target === undefined) target = t.text.toLowerCase();
        else throw new JitError('parse', `audit takes one VM name and "since <duration>", not "${t.text}"`, AUDIT_EXAMPLE);
      }
      return target === undefined ? { kind: 'audit', sinceMs } : { kind: 'audit', target, sinceMs };
    }
    case 'policy': {
      const action = tokens.shift()?.text.toLowerCase();
      // `policy vm1` / `policy show vm1`: the effective policy and where each value comes from.
      if (action === 'show' || (action !== undefined && action !== 'enable' && action !== 'disable' && tokens.length === 0)) {
        const name = action === 'show' ? tokens.shift()?.text.toLowerCase() : action;
        if (!name) throw new JitError('parse', 'policy show needs a VM name', 'policy vm1');
        noMore(tokens, 'policy');
        return { kind: 'policy_show', target: name };
      }
      if (action !== 'enable' && action !== 'disable') throw new JitError('parse', 'policy takes a VM name (to show it), or enable / disable, a VM name and (for enable) optional ports', EXAMPLES.policy);
      const target = tokens.shift();
      if (!target) throw new JitError('parse', `policy ${action} needs a VM name`, EXAMPLES.policy);
      if (action === 'disable') {
        noMore(tokens, 'policy');
        return { kind: 'policy_disable', target: target.text.toLowerCase() };
      }
      const ports = tokens.splice(0).flatMap((t) => parsePorts(t.text));
      return ports.length ? { kind: 'policy_enable', target: target.text.toLowerCase(), ports } : { kind: 'policy_enable', target: target.text.toLowerCase() };
    }
    default: {
      const guess = closest(word, COMMANDS);
      if (guess) throw new JitError('unknown_command', `unknown command "${head.text}"; did you mean ${guess}?`, EXAMPLES[guess]);
      throw new JitError('unknown_command', `unknown command "${head.text}"; commands: rdp, ssh, winrm, port, list, status, revoke, extend, approve, deny, policy, vms, help`, 'help');
    }
  }
}

function noMore(tokens: Token[], verb: string): void {
  const extra = tokens[0];
  if (extra) throw new JitError('parse', `unexpected "${extra.text}" after ${verb}`, EXAMPLES[verb as keyof typeof EXAMPLES] ?? 'help');
}

function takeId(tokens: Token[], verb: string): string {
  const t = tokens.shift();
  const example = EXAMPLES[verb as keyof typeof EXAMPLES] ?? 'list';
  if (!t) throw new JitError('parse', `${verb} needs a request id (see list)`, example);
  const id = t.text.toLowerCase();
  if (!REQUEST_ID_RE.test(id)) throw new JitError('parse', `"${t.text}" is not a request id; ids look like r7k2m9q4xw (see list)`, 'list');
  return id;
}

/** Adds a ready-to-type example to a JitError that has none. */
function withExample<T>(fn: () => T, example: string): T {
  try {
    return fn();
  } catch (e) {
    if (isJitError(e) && e.example === undefined) throw new JitError(e.code, e.message, example);
    throw e;
  }
}

export function parsePorts(text: string): PortSpec[] {
  const out: PortSpec[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d{1,5})(?:\/(tcp|udp|any|\*))?$/i.exec(part.trim());
    if (!m) {
      if (TARGET_RE.test(part) && !/^\d/.test(part)) {
        throw new JitError('bad_port', `port needs a port number before the VM name ("${part}" is not a port)`, EXAMPLES.port);
      }
      throw new JitError('bad_port', `"${part}" is not a port; write 8443, 8443/tcp or 8443/udp`, EXAMPLES.port);
    }
    const port = Number(m[1]);
    if (port < 1 || port > 65535) throw new JitError('bad_port', `${port} is not a port; ports are 1-65535`, EXAMPLES.port);
    const proto = (m[2] ?? 'tcp').toLowerCase();
    const protocol: Protocol = proto === 'any' || proto === '*' ? '*' : (proto as Protocol);
    out.push({ port, protocol });
  }
  checkPorts(out, EXAMPLES.port!);
  return out;
}

function parseAccess(verb: AccessCommand['verb'], ports: PortSpec[], tokens: Token[]): AccessCommand {
  const portText = verb === 'port' ? `port ${ports.map(portLabel).join(',')}` : verb;
  const example = verb === 'port' ? `${portText} vm1 45m` : EXAMPLES[verb];
  const t = tokens.shift();
  const d = tokens.shift();
  if (!t) throw new JitError('parse', `${verb} needs a VM name and a duration`, example);
  if (!d) {
    if (looksLikeDuration(t.text)) throw new JitError('parse', `${verb} needs a VM name before the duration`, example);
    throw new JitError('parse', `${verb} needs a duration after the VM name (at most what the policy allows)`, `${portText} ${t.text} 1h`);
  }
  // `rdp 2h vm1`: the right words in the wrong order.
  if (looksLikeDuration(t.text) && !looksLikeDuration(d.text) && TARGET_RE.test(d.text)) {
    throw new JitError('parse', `the VM name comes before the duration`, `${portText} ${d.text} ${t.text}`);
  }
  const target = parseTargetName(t.text);
  if (!target) {
    throw new JitError('parse', `"${t.text}" is not a VM name (letters, digits, . _ -)`, example);
  }
  const durationMs = withExample(() => parseDuration(d.text), `${portText} ${target} ${/^\d+$/.test(d.text) ? `${d.text}m` : '1h'}`);
  const cmd: AccessCommand = { kind: 'access', verb, ports, target, durationMs };
  while (tokens.length > 0) {
    const kw = tokens.shift()!;
    const k = kw.quoted ? '' : kw.text.toLowerCase();
    if (k === 'from') {
      if (cmd.source !== undefined) throw new JitError('parse', '"from" is given twice', `${portText} ${target} ${d.text} from 203.0.113.7`);
      const src = tokens.shift();
      if (!src || (!src.quoted && ['reason', 'from'].includes(src.text.toLowerCase()))) {
        throw new JitError('parse', '"from" needs an address or range', `${portText} ${target} ${d.text} from 203.0.113.7`);
      }
      withExample(() => parseSource(src.text), `${portText} ${target} ${d.text} from 203.0.113.7`);
      cmd.source = src.text;
    } else if (k === 'at') {
      if (cmd.startAt !== undefined) throw new JitError('parse', '"at" is given twice', `${portText} ${target} ${d.text} at 14:00`);
      const when = tokens.shift();
      if (!when || !START_RE.test(when.text)) {
        throw new JitError('parse', `"at" needs a start time: HH:MM (24-hour) or a date and time like 2026-11-25T14:00`, `${portText} ${target} ${d.text} at 14:00`);
      }
      cmd.startAt = when.text;
    } else if (k === 'reason' || k === 'for' || k === 'because') {
      if (cmd.justification !== undefined) throw new JitError('parse', '"reason" is given twice', `${portText} ${target} ${d.text} reason "INC-4711"`);
      const words: string[] = [];
      // A quoted reason is one token; an unquoted one runs up to the next `from` or `at`.
      if (tokens[0]?.quoted) words.push(tokens.shift()!.text);
      else while (tokens[0] && (tokens[0].quoted || !['from', 'at'].includes(tokens[0].text.toLowerCase()))) words.push(tokens.shift()!.text);
      const reason = checkText('reason', words.join(' '), `${portText} ${target} ${d.text} reason "INC-4711 disk full"`);
      if (!reason) throw new JitError('parse', '"reason" needs some text', `${portText} ${target} ${d.text} reason "INC-4711 disk full"`);
      cmd.justification = reason;
    } else {
      const guess = kw.quoted ? undefined : closest(k, ['from', 'reason', 'at']);
      throw new JitError(
        'parse',
        guess ? `unexpected "${kw.text}"; did you mean ${guess}?` : `unexpected "${kw.text}"; after the duration come "from <address>" and "reason <text>"`,
        `${portText} ${target} ${d.text} from 203.0.113.7 reason "INC-4711"`,
      );
    }
  }
  return cmd;
}
