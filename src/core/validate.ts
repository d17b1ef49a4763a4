// One validator for what people type, whichever way it arrives (chat, the REST API, card
// buttons, Slack dialogs): free text (justification, deny reason), ports and target names. The
// parser calls it for chat and the service calls it again for every command, so a REST body or a
// button's data is held to exactly the same rules. Pure.
import type { AccessCommand } from './command.js';
import { JitError, type JitErrorCode } from './errors.js';
import { TARGET_NAME_RE } from './ids.js';
import type { PortSpec } from './types.js';

/** The longest justification or deny reason, everywhere. */
export const MAX_TEXT_LENGTH = 500;
/** The most ports one request may name. */
export const MAX_PORTS = 10;
/** A target name as people type it: defined with its parse in ids.ts. */
export { TARGET_NAME_RE };

/**
 * Characters that are never accepted in free text: C0 controls (line breaks and tabs included),
 * DEL, C1 controls (U+0080–U+009F, among them CSI), the line / paragraph separators and the
 * bidirectional overrides and isolates. They forge lines or hide text in terminals, logs and
 * chat (an ANSI escape `ESC [ …` rewrote a line of the CLI's audit output).
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** `U+001B` for the first offending character, for messages. */
function describeControl(text: string): string {
  const c = CONTROL_RE.exec(text)?.[0] ?? '';
  const names: Record<string, string> = { '\n': 'a line break', '\r': 'a carriage return', '\t': 'a tab', '\u001b': 'an escape (ESC, as in terminal colour codes)' };
  return names[c] ?? `the control character U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * A justification or deny reason: at most MAX_TEXT_LENGTH characters, no control characters.
 * Returns it trimmed; throws a JitError saying what was wrong, what is allowed and an example.
 */
export function checkText(what: 'justification' | 'reason', text: string, example: string, code: JitErrorCode = 'parse'): string {
  const given = text.trim();
  if (given.length > MAX_TEXT_LENGTH) {
    throw new JitError(code, `the ${what} is ${given.length} characters; at most ${MAX_TEXT_LENGTH}`, example);
  }
  if (CONTROL_RE.test(given)) {
    throw new JitError(code, `the ${what} contains ${describeControl(given)}; write it on one line, without control characters`, example);
  }
  return given;
}

/** At most MAX_PORTS ports, none twice (`22/tcp` and `22/any` overlap: the same rule twice). */
export function checkPorts(ports: PortSpec[], example: string): void {
  if (ports.length === 0) throw new JitError('bad_port', 'name at least one port', example);
  if (ports.length > MAX_PORTS) throw new JitError('bad_port', `at most ${MAX_PORTS} ports per request (got ${ports.length})`, example);
  for (const [i, p] of ports.entries()) {
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new JitError('bad_port', `${p.port} is not a port; ports are 1-65535`, example);
    const twice = ports.slice(0, i).find((q) => q.port === p.port && (q.protocol === p.protocol || q.protocol === '*' || p.protocol === '*'));
    if (twice) throw new JitError('bad_port', `port ${p.port} is listed twice; name each port once`, example);
  }
}

/** A target name people may type (checked before any look-up). */
export function checkTargetName(name: string, example: string): void {
  if (!TARGET_NAME_RE.test(name)) {
    throw new JitError('parse', `"${name.slice(0, 80)}" is not a VM name (letters, digits, . _ -, starting with a letter or digit)`, example);
  }
}

/** Everything about an access command that does not need the policy: ports, target, justification. */
export function checkAccessCommand(cmd: AccessCommand, example: string): AccessCommand {
  checkTargetName(cmd.target, example);
  checkPorts(cmd.ports, example);
  if (cmd.justification === undefined) return cmd;
  const justification = checkText('justification', cmd.justification, `${example} reason "INC-4711 disk full"`);
  const { justification: _given, ...rest } = cmd;
  return justification ? { ...rest, justification } : rest;
}

/**
 * Text from the server printed to a terminal (the CLI): control characters (C0 with line breaks,
 * DEL, C1, line separators, bidirectional overrides) are shown escaped (`\x1b`, `\u202e`), never
 * sent raw, so stored text cannot move the cursor, recolour or forge a line. `keepNewlines` keeps
 * the line breaks of a multi-line reply.
 */
export function escapeControls(text: string, keepNewlines = false): string {
  return text.replace(new RegExp(CONTROL_RE.source, 'g'), (c) => {
    if (keepNewlines && c === '\n') return c;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
