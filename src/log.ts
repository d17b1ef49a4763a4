// Structured logs: one JSON line per entry (pino), on stderr. Secrets never reach the output:
// known secret-bearing fields are censored by path, and any string that looks like a credential
// (Slack tokens, bearer tokens, JWTs, Slack request signatures, passwords in URLs) is masked
// wherever it appears, so a careless `log.warn('…', { err })` cannot leak one.
import { destination, pino, stdTimeFunctions, type Logger as Pino } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const REDACTED = '[redacted]';

/** Field names whose values are secrets wherever they appear. */
const SECRET_KEYS = /^(authorization|cookie|set-cookie|token|access_?token|bot_?token|api_?token|client_?secret|password|app_?password|secret|signing_?secret|signature|x-slack-signature|x-hub-signature|proxy-authorization)$/i;

/** Credential shapes masked inside any string. */
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/\bxox[abeprs]-[A-Za-z0-9-]{6,}/g, 'xox?-' + REDACTED],
  [/\bxapp-[A-Za-z0-9-]{6,}/g, 'xapp-' + REDACTED],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 ' + REDACTED],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\bv0=[0-9a-f]{16,}/gi, 'v0=' + REDACTED],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@/\s]+@/gi, '$1' + REDACTED + '@'],
  [/\bjit_[A-Za-z0-9_-]{20,}/g, 'jit_' + REDACTED],
];

export function scrubString(s: string): string {
  let out = s;
  for (const [re, rep] of SECRET_PATTERNS) out = out.replace(re, rep);
  return out;
}

/** A copy of `v` with secret fields censored and credential-looking strings masked. */
export function scrub(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (v === null || typeof v !== 'object' || depth > 6) return v;
  if (v instanceof Error) {
    const e: Record<string, unknown> = { name: v.name, message: scrubString(v.message) };
    const code = (v as { code?: unknown }).code;
    if (code !== undefined) e.code = code;
    const status = (v as { statusCode?: unknown }).statusCode;
    if (status !== undefined) e.statusCode = status;
    if (v.stack) e.stack = scrubString(v.stack);
    return e;
  }
  if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = SECRET_KEYS.test(k) ? REDACTED : scrub(x, depth + 1);
  return out;
}

export function createLogger(level: Level = 'info', write?: (line: string) => void): Logger {
  const stream = write ? { write: (line: string) => write(line.replace(/\n$/, '')) } : destination({ fd: 2, sync: true });
  const p: Pino = pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  const at = (lvl: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (!p.isLevelEnabled(lvl)) return;
    p[lvl](scrub(fields) as Record<string, unknown>, scrubString(msg));
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
