// The audit export: one row per audit event with the columns Azure's activity-log export has
// (time, operation, status, caller, resource) and the request's own (id, ports, source, duration,
// approvers, justification), as CSV that opens cleanly in a spreadsheet.
import { formatDuration } from './duration.js';
import type { AccessRequest, AuditEvent } from './types.js';

export interface AuditRow {
  time: string;
  operation: string;
  status: 'Started' | 'Succeeded' | 'Failed';
  caller: string;
  resource: string;
  requestId: string;
  target: string;
  ports: string;
  source: string;
  duration: string;
  approvers: string;
  justification: string;
}

export const AUDIT_COLUMNS: Array<[keyof AuditRow, string]> = [
  ['time', 'Time'],
  ['operation', 'Operation'],
  ['status', 'Status'],
  ['caller', 'Caller'],
  ['resource', 'Resource'],
  ['requestId', 'Request ID'],
  ['target', 'Target'],
  ['ports', 'Ports'],
  ['source', 'Source'],
  ['duration', 'Duration'],
  ['approvers', 'Approvers'],
  ['justification', 'Justification'],
];

const statusOf = (action: AuditEvent['action']): AuditRow['status'] =>
  action === 'grant.failed' || action === 'request.denied' || action === 'request.timed_out' || action === 'notify.card_fallback' ? 'Failed' : action === 'request.created' ? 'Started' : 'Succeeded';

export function auditRow(e: AuditEvent, req: AccessRequest | null): AuditRow {
  return {
    time: new Date(e.time).toISOString(),
    operation: e.action,
    status: statusOf(e.action),
    caller: e.actor,
    resource: req?.targetId ?? e.target,
    requestId: e.requestId,
    target: e.target,
    ports: req ? req.ports.map((p) => `${p.port}/${p.protocol}`).join(' ') : '',
    source: req?.source ?? '',
    duration: req ? formatDuration(req.durationMs) : '',
    approvers: req ? req.decisions.filter((d) => d.decision === 'approve').map((d) => d.by).join(' ') : '',
    justification: req?.justification ?? '',
  };
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled. A
 * field a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
 * apostrophe, so a justification cannot become a formula in the reader's spreadsheet.
 */
export function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows: AuditRow[]): string {
  const lines = [AUDIT_COLUMNS.map(([, h]) => h).join(',')];
  for (const r of rows) lines.push(AUDIT_COLUMNS.map(([k]) => csvField(r[k])).join(','));
  return lines.join('\r\n') + '\r\n';
}
