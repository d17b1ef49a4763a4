// Exponential backoff with jitter, one definition for every retry loop (ARM reads and writes, the
// chat audit channel's posts).

/** A wait between half and all of min(capMs, baseMs · 2^attempt): retries of many callers spread out. */
export function jitteredBackoff(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.min(capMs, baseMs * 2 ** attempt) * (0.5 + random() / 2);
}
