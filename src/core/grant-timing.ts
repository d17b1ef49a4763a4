// When a grant's revocation starts (early close), as pure arithmetic: the use cases (src/app/
// revocation.ts, grants.ts) supply the gate's estimate and the settings.

export interface CloseLeadLimits {
  /** Added to the gate's estimate (the job starting late, the commit). */
  closeLeadMarginMs: number;
  /** Never earlier than this before the expiry (0: at the expiry). */
  closeLeadMaxMs: number;
  /** A job firing this much early still counts as on time. */
  expiryToleranceMs: number;
}

/** What of a grant the timing reads. */
export interface GrantTimes {
  durationMs: number;
  activatedAt?: number;
  expiresAt?: number;
}

/**
 * How long before its expiry this grant's revocation starts: the gate's estimate of how long
 * closing its rules takes (0: no early close) plus the margin, at most `closeLeadMaxMs` and at
 * most half the grant (a grant is never closed as it opens).
 */
export function closeLeadFor(grant: GrantTimes, estimateMs: number, limits: CloseLeadLimits): number {
  if (grant.expiresAt === undefined || !(estimateMs > 0)) return 0;
  // The grant's length: as asked, or longer once extended.
  const length = Math.max(grant.durationMs, grant.expiresAt - (grant.activatedAt ?? grant.expiresAt));
  return Math.max(0, Math.min(Math.round(estimateMs + limits.closeLeadMarginMs), limits.closeLeadMaxMs, Math.floor(length / 2)));
}

/**
 * null when an active grant's revocation may start at `now` (within its close lead of the expiry,
 * or past it); else when it is due. Never more than `closeLeadMaxMs` before the expiry, even
 * with the slack for a job firing a moment early.
 */
export function revocationDueAt(grant: GrantTimes, lead: number, now: number, limits: CloseLeadLimits): number | null {
  const expiresAt = grant.expiresAt ?? 0;
  const window = lead > 0 ? Math.min(limits.closeLeadMaxMs, lead + limits.expiryToleranceMs) : limits.expiryToleranceMs;
  return expiresAt > now + window ? expiresAt - lead : null;
}
