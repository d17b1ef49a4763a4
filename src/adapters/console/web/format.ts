// Small formatting helpers of the console page (pure; unit-tested).

/** A countdown as h:mm:ss ("0:29:51"); never negative. */
export function hms(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

/** What the state badge says for each request status. */
export const STATUS_LABEL: Record<string, string> = {
  awaiting_source: 'Awaiting source',
  pending: 'Pending approval',
  approved: 'Approved',
  active: 'Active',
  denied: 'Denied',
  timed_out: 'Timed out',
  cancelled: 'Withdrawn',
  expired: 'Expired',
  revoked: 'Revoked',
  failed: 'Failed',
};
