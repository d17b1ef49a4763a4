// How ports and times read in every reply, card and audit line: one definition each.
import type { PortSpec } from './types.js';

/** `22/tcp`, `53/udp`, `443/any`. */
export const portLabel = (p: PortSpec): string => `${p.port}/${p.protocol === '*' ? 'any' : p.protocol}`;

/** ISO 8601 UTC to the second (what replies show; milliseconds are noise to people). */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
