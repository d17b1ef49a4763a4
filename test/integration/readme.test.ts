// The README's walk-through is a test run: its commands are run (the real CLI against a server on
// the example policy with JIT_MIN_DURATION=10s, as the README says) and their output must be what
// the README prints, request ids and times aside. A change of wording fails here until the README
// is updated, so the README cannot drift.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config/env.js';
import { startHarness, waitFor, type Harness } from './harness.js';

const README = readFileSync(resolve('README.md'), 'utf8');

interface Step {
  command: string;
  expected: string;
  afterExpiry: boolean;
}

/** The `$ …` lines of the ```console blocks marked `<!-- walkthrough -->`, each with the output below it. */
function walkthrough(): Step[] {
  const steps: Step[] = [];
  for (const m of README.matchAll(/<!-- walkthrough(: after expiry)? -->\n```console\n([\s\S]*?)```/g)) {
    let current: Step | undefined;
    for (const line of m[2]!.split('\n').slice(0, -1)) {
      if (line.startsWith('$ ')) {
        current = { command: line.slice(2), expected: '', afterExpiry: Boolean(m[1]) };
        steps.push(current);
      } else if (current) current.expected += `${line}\n`;
    }
  }
  return steps;
}

/** Splits a shell command line: words, "double-quoted" words. */
const words = (line: string): string[] => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);

/** Request ids and times vary from run to run. */
const normalise = (text: string): string =>
  text
    .replace(/\br[0-9abcdefghjkmnpqrstvwxyz]{9}\b/g, '<id>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/g, '<time>')
    .replace(/(lateMs|leadMs)=-?\d+/g, '$1=<n>');

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ JIT_POLICY_FILE: resolve('config/policy.example.yaml'), JIT_MIN_DURATION: '10s' });
});
afterAll(async () => h?.close());

/** The CLI as the README runs it: the executable bin/jit (its bundle, rebuilt first if src/ changed). */
function cli(args: string[]): Promise<string> {
  return new Promise((done) => {
    const child = spawn('bin/jit', args, { env: { ...process.env, JIT_URL: h.app.url, JIT_DATA_DIR: h.dir, JIT_API_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => done(out));
  });
}

describe('README: the walk-through', () => {
  it('prints what the README shows', async () => {
    const steps = walkthrough();
    expect(steps.map((s) => s.command.split(' ').slice(0, 5).join(' '))).toContain('bin/jit as alice@contoso.com rdp vm1');
    let id = '';
    let waited = false;
    const actual: string[] = [];
    for (const step of steps) {
      if (step.afterExpiry && !waited) {
        await waitFor('the grant to expire', async () => (await h.rules()).length === 0, 40_000, 250);
        await waitFor('the expiry audit', async () => (await h.audit(id)).some((e) => e.action === 'rule.removed'), 10_000);
        waited = true;
      }
      const argv = words(step.command.replace(/\br[0-9a-z]{9}\b/g, id));
      expect(argv[0]).toBe('bin/jit');
      const out = await cli(argv.slice(1));
      id ||= /Request (r[0-9a-z]{9})/.exec(out)?.[1] ?? '';
      actual.push(`$ ${step.command}\n${out}`);
    }
    // On a mismatch, the actual output (to paste into the README) is in the diff.
    expect(normalise(actual.join(''))).toBe(normalise(steps.map((s) => `$ ${s.command}\n${s.expected}`).join('')));
  }, 60_000);
});

describe('README: the configuration table', () => {
  it('lists every variable the configuration accepts', () => {
    const schemaKeys = [...CONFIG_VARIABLES];
    expect(schemaKeys.length).toBeGreaterThan(40);
    const section = README.slice(README.indexOf('## Configuration'), README.indexOf('### The policy file'));
    expect(schemaKeys.filter((k) => !section.includes(`\`${k}\``))).toEqual([]);
  });

  it('says the Node version package.json requires, and the Teams app type Azure Bot creates', () => {
    const engines = (JSON.parse(readFileSync(resolve('package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe('>=20.11');
    expect(README).toContain('Needs Node.js 20.11 or later');
    expect(README).toMatch(/\| `MICROSOFT_APP_TYPE`, `MICROSOFT_APP_TENANT_ID` \| `SingleTenant` \|/);
  });
});
