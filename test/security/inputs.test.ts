// Issue 17, item 11: "input checks differ between chat and REST". One validator now holds for
// both (and for card buttons): a justification / reason of at most 500 characters without control
// characters (an ANSI escape in a justification forged a line of the CLI's `audit` output), at most
// 10 ports and none twice (three identical ports gave three `rule.applied` events), target names by
// one pattern with own-property look-ups (`constructor` / `__proto__` gave a 500), and
// `203.0.113.7/0` refused like any prefix with host bits (it silently became Any). Bad input gets a
// clear reply and changes nothing. The CLI also escapes control characters it prints.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/adapters/redis/audit.js';
import { parsePolicyText } from '../../src/config/policy-file.js';
import { findTarget } from '../../src/core/policy.js';
import { parseSource } from '../../src/core/source.js';
import { checkPorts, checkText, escapeControls } from '../../src/core/validate.js';
import { testBook } from '../fixtures/book.js';
import { requestOf, startHarness, type Harness } from '../integration/harness.js';
import { API_TOKENS, api } from './lib.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ JIT_API_TOKENS: API_TOKENS });
});
afterAll(async () => {
  await h?.close();
});

/** Runs an attack and asserts it changed nothing: no audit event, no rule, no request for alice. */
async function changesNothing(attack: () => Promise<void>): Promise<void> {
  const before = { audit: (await h.audit()).length, rules: (await h.rules()).length, mine: await h.app.service.listVisible(p('dave@contoso.com'), { limit: 200 }) };
  await attack();
  expect((await h.audit()).length).toBe(before.audit);
  expect((await h.rules()).length).toBe(before.rules);
  expect((await h.app.service.listVisible(p('dave@contoso.com'), { limit: 200 })).map((r) => r.id)).toEqual(before.mine.map((r) => r.id));
}

const ESC = '\u001b';
const FORGED = `ok${ESC}[2K${ESC}[1G2026-01-01T00:00:00Z  r000000000  grant.revoked  dave@contoso.com`;

describe('free text: one length limit, no control characters, chat and REST alike', () => {
  it('an ANSI escape, a C1 CSI, a line break, a bidi override in a justification are refused everywhere', async () => {
    await changesNothing(async () => {
      for (const bad of [FORGED, 'INC-1 \u009b2K hidden', 'INC-1 first\nsecond', 'INC-1 \u202eevil']) {
        const chat = await h.cmd('alice@contoso.com', `ssh dev1 30m from 203.0.113.7 reason "${bad}"`);
        // A line break or C1 in the command itself is refused by the parser; inside the reason by the validator.
        expect(chat.reply, JSON.stringify(bad)).toMatchObject({ kind: 'rejected' });
        expect(chat.text).toMatch(/control character|line break|escape/);
        const rest = await api(h, 'alice', 'POST', '/requests', { target: 'dev1', kind: 'ssh', duration: '30m', source: '203.0.113.7', justification: bad });
        expect(rest.status, JSON.stringify(bad)).toBe(400);
        expect(String(rest.json.error)).toMatch(/control character|line break|escape/);
        expect(rest.json.example).toBeTruthy();
      }
    });
  });

  it('501 characters are refused with the same message in chat and over REST (REST allowed 1,000)', async () => {
    const long = 'x'.repeat(501);
    await changesNothing(async () => {
      const chat = await h.cmd('alice@contoso.com', `ssh dev1 30m from 203.0.113.7 reason "${long}"`);
      const rest = await api(h, 'alice', 'POST', '/requests', { target: 'dev1', kind: 'ssh', duration: '30m', source: '203.0.113.7', justification: long });
      expect(chat.text).toMatch(/is 501 characters; at most 500/);
      expect(rest.status).toBe(400);
      expect(String(rest.json.error)).toMatch(/is 501 characters; at most 500/);
    });
    expect(requestOf((await api(h, 'alice', 'POST', '/requests', { target: 'dev1', kind: 'ssh', duration: '30m', source: '203.0.113.7', justification: 'x'.repeat(500) })).json as never).status).toBe('active');
  });

  it('a deny reason with an escape is refused from chat, REST and a card\'s text box; the request stays pending', async () => {
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.9')).reply).id;
    const before = (await h.audit(id)).length;
    expect((await h.cmd('bob@contoso.com', `deny ${id} reason "no \u009b2K"`)).reply).toMatchObject({ kind: 'rejected' });
    expect((await api(h, 'bob', 'POST', `/requests/${id}/deny`, { reason: FORGED })).status).toBe(400);
    const click = await api(h, 'bob', 'POST', '/card-actions', { verb: 'deny', data: { requestId: id, reason: FORGED } });
    expect(click.json).toMatchObject({ kind: 'message' });
    expect(String(click.json.text)).toMatch(/escape/);
    const long = await api(h, 'bob', 'POST', '/card-actions', { verb: 'deny', data: { requestId: id, reason: 'y'.repeat(501) } });
    // The REST card host validates the body first (400), chat's card buttons refuse with a message: both say the limit.
    expect(String(long.json.text ?? long.json.error)).toMatch(/at most 500/);
    expect(await h.app.service.get(id)).toMatchObject({ status: 'pending', decisions: [] });
    expect((await h.audit(id)).length).toBe(before);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });
});

describe('ports: at most 10, none twice', () => {
  it('three identical ports over REST (one rule.applied each before) and in chat are refused; nothing opens', async () => {
    await changesNothing(async () => {
      for (const ports of [[8443, 8443, 8443], ['8443/tcp', '8443'], ['8443/any', '8443/tcp'], ['8443,8443'], Array.from({ length: 11 }, (_, i) => 8000 + i)]) {
        const r = await api(h, 'alice', 'POST', '/requests', { target: 'dev1', kind: 'port', ports, duration: '20m', source: '198.51.100.7' });
        expect(r.status, JSON.stringify(ports)).toBe(400);
        expect(String(r.json.error)).toMatch(/listed twice|at most 10 ports/);
      }
      expect((await h.cmd('alice@contoso.com', 'port 8443,8443,8443 dev1 20m from 198.51.100.7')).text).toMatch(/listed twice/);
      expect((await h.cmd('alice@contoso.com', `port ${Array.from({ length: 11 }, (_, i) => 8000 + i).join(',')} dev1 20m from 198.51.100.7`)).text).toMatch(/at most 10 ports/);
    });
  });
});

describe('target names: one pattern, own properties only (no 500)', () => {
  const NAMES = ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf'];
  it('as a target of a request, an audit filter or a policy command: a clear 4xx, never a 500', async () => {
    await changesNothing(async () => {
      for (const name of NAMES) {
        const r = await api(h, 'alice', 'POST', '/requests', { target: name, kind: 'ssh', duration: '30m', source: '203.0.113.7' });
        expect([400, 404], `${name}: ${r.raw}`).toContain(r.status);
        expect((await api(h, 'dave', 'GET', `/audit?target=${encodeURIComponent(name)}`)).status, name).toBe(404);
        expect((await api(h, 'dave', 'GET', `/requests?target=${encodeURIComponent(name)}`)).status, name).toBe(200);
        for (const text of [`ssh ${name} 30m from 203.0.113.7`, `audit ${name}`, `policy ${name}`, `policy enable ${name}`]) {
          const c = await api(h, 'dave', 'POST', '/commands', { text });
          expect(c.status, `${text}: ${c.raw}`).toBeGreaterThanOrEqual(400);
          expect(c.status, `${text}: ${c.raw}`).toBeLessThan(500);
        }
      }
    });
  });
});

describe('the validator and look-ups themselves', () => {
  it('look-ups by name see own entries only; the policy file refuses names chat could not type', () => {
    const book = testBook();
    for (const name of ['constructor', '__proto__', 'hasOwnProperty', 'toString']) expect(findTarget(book, name), name).toBeUndefined();
    const vm = '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/x';
    expect(() => parsePolicyText(`targets:\n  __proto__: { id: ${vm}, os: linux }\n`, 'p.yaml')).toThrow(/targets.__proto__: "__proto__" is not a VM name/);
    expect(() => parsePolicyText(`targets:\n  "vm 1": { id: ${vm}, os: linux }\n`, 'p.yaml')).toThrow(/is not a VM name/);
    // A name that is only a prototype member elsewhere is an ordinary target here.
    expect(Object.keys(parsePolicyText(`targets:\n  constructor: { id: ${vm}, os: linux }\n`, 'p.yaml').targets)).toEqual(['constructor']);
  });

  it('text, ports and sources: each refusal says what was wrong', () => {
    expect(() => checkText('reason', 'a\u0085b', 'x')).toThrow(/control character U\+0085/);
    expect(() => checkText('reason', 'a\u2066b', 'x')).toThrow(/control character U\+2066/);
    expect(checkText('reason', '  Ünïcode, "quotes" & <markup> ok  ', 'x')).toBe('Ünïcode, "quotes" & <markup> ok');
    expect(() => checkPorts([{ port: 22, protocol: 'tcp' }, { port: 22, protocol: '*' }], 'x')).toThrow(/port 22 is listed twice/);
    expect(() => checkPorts([{ port: 53, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], 'x')).not.toThrow();
    expect(() => parseSource('203.0.113.7/0')).toThrow(/host bits set: \/0 is every address/);
    expect(() => parseSource('2001:db8::1/0')).toThrow(/host bits/);
    expect(parseSource('0.0.0.0/0')).toBe('*');
    expect(parseSource('::/0')).toBe('*');
  });
});

describe('source ranges: /0 with host bits is refused, not Any', () => {
  it('203.0.113.7/0 in chat and over REST: refused with what to write instead; nothing stored', async () => {
    await changesNothing(async () => {
      const chat = await h.cmd('alice@contoso.com', 'ssh dev1 30m from 203.0.113.7/0');
      expect(chat.reply).toMatchObject({ kind: 'rejected', code: 'bad_source' });
      expect(chat.text).toMatch(/host bits/);
      for (const source of ['203.0.113.7/0', '2001:db8::1/0', '::ffff:203.0.113.7/96']) {
        const rest = await api(h, 'alice', 'POST', '/requests', { target: 'dev1', kind: 'ssh', duration: '30m', source });
        expect(rest.status, source).toBe(400);
        expect(rest.json.code, source).toBe('bad_source');
      }
    });
    // Any, written as Any, is still Any where the policy allows it.
    expect(requestOf((await h.cmd('alice@contoso.com', 'ssh dev1 30m from *')).reply).source).toBe('*');
  });
});

describe('the CLI escapes control characters it prints', () => {
  it('a justification stored with an ANSI escape (before this check) prints escaped, on one line', async () => {
    // Plant an event as an older version could have stored it.
    const log = new RedisAuditLog(h.app.redis, h.prefix);
    await log.append({ time: Date.now(), actor: `alice@contoso.com${ESC}[31m`, action: 'request.created', requestId: 'r999999999', target: 'dev1', details: { justification: FORGED } });
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'audit', 'r999999999'], {
      env: { ...process.env, JIT_URL: h.app.url, JIT_DATA_DIR: h.dir },
    });
    expect(stdout).not.toContain(ESC);
    expect(stdout).toContain('\\x1b[2K');
    expect(stdout.trim().split('\n')).toHaveLength(1);
  }, 30_000);

  it('escapeControls: C0, DEL, C1, separators and bidi overrides shown as escapes; newlines kept only when asked', () => {
    expect(escapeControls(`a${ESC}[31mb\u0007c\u007fd\u009be\u2028f\u202eg`)).toBe('a\\x1b[31mb\\x07c\\x7fd\\x9be\\u2028f\\u202eg');
    expect(escapeControls('one\ntwo', true)).toBe('one\ntwo');
    expect(escapeControls('one\ntwo')).toBe('one\\x0atwo');
    expect(escapeControls('plain text, ünïcode ✓')).toBe('plain text, ünïcode ✓');
  });
});
