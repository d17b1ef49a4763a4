// The ids of the domain, one definition each: a branded string type and the one function that
// makes it from text (parse: normalises and checks the shape, undefined when the text is not one).
// A brand exists only at compile time; on the wire and in Redis these are plain strings. Every
// place an id enters the system (the policy file, env, chat directories, the HTTP API, the CLI and
// console) goes through its parse, so nothing downstream normalises again.

declare const brand: unique symbol;
/** A string that went through the parse of its kind `B`. */
export type Branded<B extends string> = string & { readonly [brand]: B };

/** `T` as JSON carries it: every branded string a plain string (for wire schemas that describe a branded type). */
export type Unbranded<T> = T extends Branded<string>
  ? string
  : T extends readonly (infer U)[]
    ? Unbranded<U>[]
    : T extends object
      ? { [K in keyof T]: Unbranded<T[K]> }
      : T;

function must<T>(kind: string, parse: (text: string) => T | undefined): (text: string) => T {
  return (text) => {
    const v = parse(text);
    if (v === undefined) throw new TypeError(`${JSON.stringify(text)} is not a ${kind}`);
    return v;
  };
}

// ------------------------------------------------------------------ request ids
// `r` + 9 Crockford base-32 characters (no i, l, o, u), never a plain integer and never containing
// `:` (BullMQ job ids). The generator (src/app/ids.ts), the command parser, the HTTP API and its
// OpenAPI pattern, and the chat buttons all read it from here.

/** A string known to have the request-id shape (from `parseRequestId` or `formatRequestId`). */
export type RequestId = Branded<'RequestId'>;

/** Crockford base 32, lower case: digits and letters without i, l, o, u. */
export const REQUEST_ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const REQUEST_ID_LENGTH = 9;
/** The same shape as a JSON-Schema / OpenAPI `pattern` (ECMA-262) and as a RegExp. */
export const REQUEST_ID_PATTERN = `^r[${REQUEST_ID_ALPHABET}]{${REQUEST_ID_LENGTH}}$`;
export const REQUEST_ID_RE = new RegExp(REQUEST_ID_PATTERN);

export function parseRequestId(text: string): RequestId | undefined {
  return REQUEST_ID_RE.test(text) ? (text as RequestId) : undefined;
}
/** `parseRequestId` for text that must be one (a bug otherwise): throws a TypeError. */
export const requestId = must('request id', parseRequestId);

/** An id from random bytes: each byte picks one character of the alphabet (modulo 32). */
export function formatRequestId(bytes: Uint8Array): RequestId {
  if (bytes.length !== REQUEST_ID_LENGTH) throw new RangeError(`a request id takes ${REQUEST_ID_LENGTH} bytes, not ${bytes.length}`);
  return `r${Array.from(bytes, (b) => REQUEST_ID_ALPHABET[b % 32]).join('')}` as RequestId;
}

// ------------------------------------------------------------------ principals
// A person, by email / UPN: `local@domain`, trimmed and lower-cased (Entra ID, Slack and Teams
// spell the same person in different cases). A group reference (`group:oncall`) is not a
// principal: it names a group of them (PrincipalRef below).

/** A principal's id: trimmed, lower-cased `local@domain` (from `parsePrincipal`). */
export type PrincipalId = Branded<'PrincipalId'>;
/** The longest principal id (an email address's limit, RFC 5321). */
export const PRINCIPAL_MAX_LENGTH = 254;
/** One `@`, something on each side, no white space. */
export const PRINCIPAL_RE = /^[^@\s]+@[^@\s]+$/;
/** Characters that forge lines or hide text (C0 / C1 controls, line separators, bidi overrides): never in an id. */
// eslint-disable-next-line no-control-regex
const HIDDEN_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export const GROUP_PREFIX = 'group:';
/** A reference to a group of the policy file (`group:oncall`). */
export type GroupRef = `${typeof GROUP_PREFIX}${string}`;
/** A principal or a group reference, as roles and approver lists name them. */
export type PrincipalRef = PrincipalId | GroupRef;

/**
 * The principal `text` names (`' Alice@Contoso.com'` → `alice@contoso.com`), or undefined when it
 * is not one: no `@` with text on both sides, white space or control characters inside, longer
 * than PRINCIPAL_MAX_LENGTH, or a group reference.
 */
export function parsePrincipal(text: string): PrincipalId | undefined {
  const p = text.trim().toLowerCase();
  if (p.length > PRINCIPAL_MAX_LENGTH || !PRINCIPAL_RE.test(p) || HIDDEN_RE.test(p) || p.startsWith(GROUP_PREFIX)) return undefined;
  return p as PrincipalId;
}
/** `parsePrincipal` for text that must be one (a bug otherwise): throws a TypeError. */
export const principalId = must('principal', parsePrincipal);

export const isGroupRef = (ref: string): ref is GroupRef => ref.startsWith(GROUP_PREFIX);

/** A principal (parsed as parsePrincipal does) or `group:<name>` (kept as written), or undefined. */
export function parsePrincipalRef(text: string): PrincipalRef | undefined {
  if (isGroupRef(text)) return text.length > GROUP_PREFIX.length && !HIDDEN_RE.test(text) ? text : undefined;
  return parsePrincipal(text);
}

// ------------------------------------------------------------------ target names
// The short name people type for a VM (`vm1`): letters, digits, `.`, `_`, `-`, a letter or digit
// first, at most 80; lower-cased (chat, the REST API, forms and the policy file all name targets
// case-insensitively). Not an ARM resource id: those stay plain strings.

/** A target's name as the policy file keys it: lower-case (from `parseTargetName`). */
export type TargetName = Branded<'TargetName'>;
/** A target name as people type it (any case). */
export const TARGET_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,79}$/i;

/** The target name `text` is (`VM1` → `vm1`), or undefined: no trimming, nothing outside TARGET_NAME_RE. */
export function parseTargetName(text: string): TargetName | undefined {
  return TARGET_NAME_RE.test(text) ? (text.toLowerCase() as TargetName) : undefined;
}
/** `parseTargetName` for text that must be one (a bug otherwise): throws a TypeError. */
export const targetName = must('target name', parseTargetName);
