// Request ids people can type: `r` + 9 Crockford base32 characters (no i, l, o, u), never a
// plain integer and never containing `:` (BullMQ job ids), ~45 bits of randomness.
import type { IdSource } from './ports.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function randomIds(random: (bytes: number) => Uint8Array): IdSource {
  const pick = (n: number) => Array.from(random(n), (b) => ALPHABET[b % 32]).join('');
  return {
    requestId: () => `r${pick(9)}`,
    token: () => pick(32), // 160 bits
  };
}
