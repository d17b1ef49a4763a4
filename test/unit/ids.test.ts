// The request-id shape is defined once: every id the generator makes is accepted by the parser,
// the HTTP API's schema and the OpenAPI document's patterns, and those refuse everything else.
import { describe, expect, it } from 'vitest';
import { randomIds } from '../../src/app/ids.js';
import { openApiDocument } from '../../src/adapters/http/openapi.js';
import { parseRequestId } from '../../src/core/ids.js';

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
