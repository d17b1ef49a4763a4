// Request ids people can type (the shape is defined once, in src/core/ids.ts), ~45 bits of
// randomness, and tokens of 160 bits in the same alphabet.
import { formatRequestId, REQUEST_ID_ALPHABET, REQUEST_ID_LENGTH } from '../core/ids.js';
import type { IdSource } from './ports.js';

export function randomIds(random: (bytes: number) => Uint8Array): IdSource {
  return {
    requestId: () => formatRequestId(random(REQUEST_ID_LENGTH)),
    token: () => Array.from(random(32), (b) => REQUEST_ID_ALPHABET[b % 32]).join(''), // 160 bits
  };
}
