// Request ids, one definition: `r` + 9 Crockford base-32 characters (no i, l, o, u), never a plain
// integer and never containing `:` (BullMQ job ids). The generator (src/app/ids.ts), the command
// parser, the HTTP API and its OpenAPI pattern, and the chat buttons all read it from here.

declare const requestIdBrand: unique symbol;
/** A string known to have the request-id shape (from `parseRequestId` or `formatRequestId`). */
export type RequestId = string & { readonly [requestIdBrand]: true };

/** Crockford base 32, lower case: digits and letters without i, l, o, u. */
export const REQUEST_ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const REQUEST_ID_LENGTH = 9;
/** The same shape as a JSON-Schema / OpenAPI `pattern` (ECMA-262) and as a RegExp. */
export const REQUEST_ID_PATTERN = `^r[${REQUEST_ID_ALPHABET}]{${REQUEST_ID_LENGTH}}$`;
export const REQUEST_ID_RE = new RegExp(REQUEST_ID_PATTERN);

export function parseRequestId(text: string): RequestId | undefined {
  return REQUEST_ID_RE.test(text) ? (text as RequestId) : undefined;
}

/** An id from random bytes: each byte picks one character of the alphabet (modulo 32). */
export function formatRequestId(bytes: Uint8Array): RequestId {
  if (bytes.length !== REQUEST_ID_LENGTH) throw new RangeError(`a request id takes ${REQUEST_ID_LENGTH} bytes, not ${bytes.length}`);
  return `r${Array.from(bytes, (b) => REQUEST_ID_ALPHABET[b % 32]).join('')}` as RequestId;
}
