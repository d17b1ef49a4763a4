// The request-id shape is defined once: every id the generator makes is accepted by the parser,
// the HTTP API's schema and the OpenAPI document's patterns, and those refuse everything else.
import { describe, expect, it } from 'vitest';
import { randomIds } from '../../src/app/ids.js';
import { openApiDocument } from '../../src/adapters/http/openapi.js';
import { GROUP_PREFIX, parsePrincipal, parsePrincipalRef, parseRequestId, parseTargetName, PRINCIPAL_MAX_LENGTH, principalId, requestId, targetName } from '../../src/core/ids.js';

/** Every `pattern` the OpenAPI document gives a request id (path parameters and the Request schema's `id`). */
function idPatterns(): RegExp[] {
  const found: string[] = [];
  const walk = (node: unknown, key: string) => {
    if (Array.isArray(node)) node.forEach((n) => walk(n, key));
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.name === 'id' && o.in === 'path') found.push(String((o.schema as { pattern: string }).pattern));
      if (key === 'id' && typeof o.pattern === 'string') found.push(o.pattern);
      for (const [k, v] of Object.entries(o)) walk(v, k);
    }
  };
  walk(openApiDocument(), '');
  return found.map((p) => new RegExp(p, 'u'));
}

describe('request ids', () => {
  const patterns = idPatterns();

  it('the OpenAPI document states the pattern on the request schema and on every {id} path', () => {
    const paths = Object.keys((openApiDocument() as { paths: Record<string, unknown> }).paths).filter((p) => p.includes('{id}'));
    expect(paths.length).toBeGreaterThan(0);
    expect(patterns.length).toBeGreaterThan(paths.length);
    expect(new Set(patterns.map((p) => p.source)).size).toBe(1);
  });

  it('every id the generator can make is accepted by the parser and by the OpenAPI pattern', () => {
    // Each position sees every byte value 0-255, so every character the generator can put anywhere.
    for (let b = 0; b < 256; b++) {
      const bytes = Uint8Array.from({ length: 9 }, (_, i) => (b + i * 37) % 256);
      const id = randomIds((n) => (n === 9 ? bytes : new Uint8Array(n))).requestId();
      expect(parseRequestId(id)).toBe(id);
      for (const p of patterns) expect(p.test(id), `${p} on ${id}`).toBe(true);
    }
  });

  it.each([
    ['a letter outside the alphabet (i)', 'r12345678i'],
    ['a letter outside the alphabet (l)', 'rl23456789'],
    ['a letter outside the alphabet (o)', 'r1234o6789'],
    ['a letter outside the alphabet (u)', 'r12345678u'],
    ['upper case', 'rABCDEFGHJ'],
    ['too short', 'r12345678'],
    ['too long', 'r1234567890'],
    ['no r', 'x123456789'],
    ['a plain integer', '1234567890'],
    ['a colon', 'r1234:6789'],
    ['surrounding text', ' r123456789'],
  ])('%s is refused everywhere', (_what, text) => {
    expect(parseRequestId(text)).toBeUndefined();
    for (const p of patterns) expect(p.test(text), `${p} on ${text}`).toBe(false);
  });
});

describe('the throwing forms (for text that must be an id)', () => {
  it('return what the parse returns, and throw a TypeError naming the text otherwise', () => {
    expect(requestId('rk2m9qx7ab')).toBe('rk2m9qx7ab');
    expect(() => requestId('r1')).toThrow(TypeError);
    expect(principalId(' Bob@Contoso.com ')).toBe('bob@contoso.com');
    expect(() => principalId('bob')).toThrow(/"bob" is not a principal/);
  });
});

describe('principals', () => {
  it.each([
    ['a plain address', 'alice@contoso.com', 'alice@contoso.com'],
    ['upper case (Entra ID, Slack and Teams spell people differently)', 'Alice.Smith@Contoso.COM', 'alice.smith@contoso.com'],
    ['white space around it (profiles, headers)', '  alice@contoso.com\t', 'alice@contoso.com'],
    ['a UPN without a dot in the domain', 'svc@corp', 'svc@corp'],
    ['plus addressing and markup-ish characters', 'a+b_c*d@x.example', 'a+b_c*d@x.example'],
    ['non-ASCII', 'Jürgen@Beispiel.de', 'jürgen@beispiel.de'],
    ['the longest', `${'a'.repeat(PRINCIPAL_MAX_LENGTH - 4)}@b.c`, `${'a'.repeat(PRINCIPAL_MAX_LENGTH - 4)}@b.c`],
  ])('accepts %s', (_what, text, id) => {
    expect(parsePrincipal(text)).toBe(id);
    expect(parsePrincipalRef(text)).toBe(id);
    // Parsing is idempotent: an id parses to itself.
    expect(parsePrincipal(id)).toBe(id);
  });

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['no @', 'alice'],
    ['nothing before the @', '@contoso.com'],
    ['nothing after the @', 'alice@'],
    ['two @', 'alice@bob@contoso.com'],
    ['white space inside', 'alice smith@contoso.com'],
    ['a line break inside', 'alice\n@contoso.com'],
    ['a control character (ESC)', 'alice\u001b[31m@contoso.com'],
    ['a bidirectional override', 'alice\u202e@contoso.com'],
    ['longer than an address may be', `${'a'.repeat(PRINCIPAL_MAX_LENGTH - 3)}@b.c`],
    ['a group reference', 'group:oncall@contoso.com'],
    ['a group reference in upper case', 'GROUP:oncall@contoso.com'],
  ])('refuses %s', (_what, text) => {
    expect(parsePrincipal(text)).toBeUndefined();
  });

  it('group references are refs, not principals: kept as written', () => {
    expect(parsePrincipal('group:oncall')).toBeUndefined();
    expect(parsePrincipalRef('group:oncall')).toBe('group:oncall');
    expect(parsePrincipalRef('group:On-Call')).toBe('group:On-Call');
    expect(parsePrincipalRef(GROUP_PREFIX)).toBeUndefined();
    expect(parsePrincipalRef('group:a\u0000b')).toBeUndefined();
    expect(parsePrincipalRef('oncall')).toBeUndefined();
  });
});

describe('target names', () => {
  it.each([
    ['a short name', 'vm1', 'vm1'],
    ['upper case (chat, the REST API and the policy file name targets case-insensitively)', 'VM-Prod.01', 'vm-prod.01'],
    ['dots, underscores and hyphens after the first character', 'db_1.eu-west', 'db_1.eu-west'],
    ['a digit first', '1vm', '1vm'],
    ['the longest (80)', `v${'m'.repeat(79)}`, `v${'m'.repeat(79)}`],
  ])('accepts %s', (_what, text, name) => {
    expect(parseTargetName(text)).toBe(name);
    expect(parseTargetName(name)).toBe(name);
    expect(targetName(text)).toBe(name);
  });

  it.each([
    ['empty', ''],
    ['white space around it (a name is typed as one word)', ' vm1'],
    ['white space inside', 'vm 1'],
    ['a punctuation mark first', '-vm1'],
    ['a dot first', '.vm1'],
    ['longer than 80', `v${'m'.repeat(80)}`],
    ['a slash (an ARM id is not a target name)', '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'],
    ['an inherited key of every object', '__proto__'],
    ['markup', 'vm1<b>'],
    ['non-ASCII', 'vmé'],
  ])('refuses %s', (_what, text) => {
    expect(parseTargetName(text)).toBeUndefined();
    expect(() => targetName(text)).toThrow(TypeError);
  });
});
