// ARM's errors and what to do after them (re-read, retry, give up), its answer classes, and the
// backoff between attempts.
import { jitteredBackoff } from '../../core/backoff.js';

export class ArmError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    /** The long-running operation reached this terminal state (Failed / Canceled). */
    readonly operationStatus?: string,
  ) {
    super(message);
    this.name = 'ArmError';
  }
}

/** Codes ARM answers for "busy, try again": on the request or as a long-running operation's end. */
const RETRYABLE_CODES = new Set(
  [
    'AnotherOperationInProgress',
    'RetryableError',
    'RetryableErrorDueToAnotherOperation',
    'Canceled',
    'CanceledAndSupersededDueToAnotherOperation',
    'OperationPreempted',
    'InternalServerError',
    'ServiceUnavailable',
    'GatewayTimeout',
    'TooManyRequests',
    'NetworkError',
    'RequestTimeout',
  ].map((c) => c.toLowerCase()),
);
/** Codes that mean "read again and decide again" (someone else changed the resource). */
const REREAD_CODES = new Set(['PreconditionFailed', 'SecurityRuleConflict'].map((c) => c.toLowerCase()));

/**
 * What to do after an error: `reread` (the resource changed: read it again, at once), `retry`
 * (busy or throttled: back off, then read again) or `fatal` (ARM said no: report its code).
 */
export function classify(err: unknown): 'reread' | 'retry' | 'fatal' {
  if (!(err instanceof ArmError)) return 'retry';
  const code = err.code.toLowerCase();
  if (code === 'scopelocked') return 'fatal';
  if (err.status === 412 || REREAD_CODES.has(code)) return 'reread';
  if (RETRYABLE_CODES.has(code)) return 'retry';
  if (err.operationStatus === 'Canceled') return 'retry';
  if (err.operationStatus) return 'fatal';
  if (err.status === 429 || (err.status !== undefined && err.status >= 500)) return 'retry';
  // 409 without a known code is a conflict with something in flight; a lock says ScopeLocked.
  if (err.status === 409) return 'retry';
  return 'fatal';
}

export type ArmCall = 'read' | 'write';
/**
 * What ARM answered one call, as a class: `ok`, `404`, `409` (another operation in progress),
 * `412` (ETag moved), `429` (throttled), other `4xx`, `5xx`, `timeout` (no answer within the
 * request timeout), `network` (no HTTP answer at all) or `failed` (a long-running operation that
 * ended Failed or Canceled).
 */
export type ArmAnswer = 'ok' | '404' | '409' | '412' | '429' | '4xx' | '5xx' | 'timeout' | 'network' | 'failed';

export const answerClass = (status: number): ArmAnswer =>
  status === 404 || status === 409 || status === 412 || status === 429 ? (String(status) as ArmAnswer) : status >= 500 ? '5xx' : status >= 400 ? '4xx' : 'ok';

/** Resource Graph's `x-ms-user-quota-resets-after` (hh:mm:ss, fractions allowed) in ms. */
export function quotaResetMs(value: string | undefined | null): number | undefined {
  const m = value ? /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  return Math.round((Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000);
}

/** Jittered exponential backoff (250 ms doubling, capped at 10 s), never shorter than Retry-After. */
export function backoff(attempt: number, retryAfterMs?: number): number {
  return Math.max(retryAfterMs ?? 0, jitteredBackoff(Math.min(attempt, 6), 250, 10_000));
}

/** errorInfo for callers that only want status / code / Retry-After. */
export function errorInfo(err: unknown): { status?: number; code?: string; retryAfterMs?: number } {
  if (err instanceof ArmError) return { ...(err.status !== undefined ? { status: err.status } : {}), code: err.code, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) };
  return {};
}
