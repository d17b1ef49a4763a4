// Every command the bot suggests — the lines of `help` and the "try …" of a refusal — is what
// people paste next: each must be accepted when the person it was shown to sends it. Run through
// the local channel (as the CLI and the console send commands), for every principal of the
// example policy (what a new user runs) and of a policy with a reason pattern, two source ranges
// and WinRM / custom ports.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../src/config/policy-file.js';
import type { Reply } from '../../src/core/reply.js';
import { PROD, TEST_POLICY_YAML, vmId } from '../fixtures/book.js';
import { startHarness, type Harness } from './harness.js';

const EXAMPLE_POLICY = resolve('config/policy.example.yaml');

/** The test policy plus a target that needs a ticket reason and allows WinRM, and one with two source ranges. */
const STRICT_POLICY = TEST_POLICY_YAML.replace(
  'targets:\n',
  `targets:
  tkt1: { id: ${vmId(PROD, 'tkt1')}, os: windows, address: tkt1.contoso.example }
  rng1: { id: ${vmId(PROD, 'rng1')}, os: linux, address: rng1.contoso.example }
`,
) + `  tkt1:
    scope: ${vmId(PROD, 'tkt1')}
    ports:
      - { port: 5985, protocol: tcp, allowedSourcePrefixes: ["*"], maxDuration: 2h }
      - { port: 5986, protocol: tcp, allowedSourcePrefixes: ["*"], maxDuration: 2h }
      - { port: 3389, protocol: tcp, allowedSourcePrefixes: ["*"], maxDuration: 1h }
    justification: { required: true, pattern: "^(INC|CHG)-[0-9]+", hint: "a ticket id such as INC-1234" }
  rng1:
    scope: ${vmId(PROD, 'rng1')}
    ports:
      - { port: 22, protocol: tcp, allowedSourcePrefixes: ["10.20.0.0/16", "192.168.7.0/24"], maxDuration: 45m }
`;

/** What people get wrong: each refusal's example is pasted back. */
const MISTAKES = [
  'rdp vm1 99h', 'rdp vm1 99h from 203.0.113.7', 'rdp vm1 1h', 'rdp vm1', 'rdp 2h vm1', 'rdp vm1 2x', 'rdp vm1 1m from 203.0.113.7',
  'ssh nosuchvm 1h', 'ssh db1 30m from 8.8.8.8', 'ssh db1 2h', 'ssh dev1 30m frm 198.51.100.20', 'ssh dev1 30m from',
  'port 9999 vm1 1h', 'port vm1 1h', 'winrm vm1 1h', 'rdp vm1 1h from 203.0.113.7 at 25:00', 'rdp vm1 1h from 203.0.113.7 reason',
  'rdp tkt1 30m from 203.0.113.7', 'rdp tkt1 30m from 203.0.113.7 reason "disk full"', 'winrm tkt1 3h', 'ssh rng1 30m', 'ssh rng1 30m from 203.0.113.7',
  'status', 'status xyz', 'status r7k2m9q4xw', 'approve', 'approve r7k2m9q4xw', 'extend', 'deny', 'revoke r7k2m9q4xw',
  'lsit', 'frobnicate', 'list everything', 'policy', 'policy enable', 'policy vm99', 'policy enable vm1', 'audit nosuch', 'audit since', 'vms all',
  'rdp vm1 1h "unclosed',
];

async function checkEverySuggestion(h: Harness, principals: string[]): Promise<void> {
  const failures: string[] = [];
  const paste = async (who: string, shownFor: string, example: string) => {
    const { reply, text } = await h.cmd(who, example);
    if (reply.kind === 'rejected') failures.push(`${who}: "${example}" (suggested for "${shownFor}") was refused: ${text}`);
  };
  for (const who of principals) {
    const help = (await h.cmd(who, 'help')).reply as Extract<Reply, { kind: 'help' }>;
    expect(help.kind).toBe('help');
    for (const e of help.examples) await paste(who, 'help', e);
    for (const mistake of MISTAKES) {
      const { reply } = await h.cmd(who, mistake);
      if (reply.kind === 'rejected' && reply.example) await paste(who, mistake, reply.example);
    }
  }
  expect(failures).toEqual([]);
}

describe('every suggestion works when pasted by the person it was shown to', () => {
  describe('the example policy (a new user, JIT_MIN_DURATION default)', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ JIT_POLICY_FILE: EXAMPLE_POLICY, JIT_MIN_DURATION: '5m' });
    });
    afterAll(async () => h?.close());

    it('help shows the request verbs, scheduling and the read commands, from the person\'s own targets', async () => {
      const { text } = await h.cmd('alice@contoso.com', 'help');
      for (const verb of ['rdp vm1', 'ssh ', ' at 14:00', 'list', 'vms', 'policy ', 'audit since 7d']) expect(text).toContain(verb);
      expect(text).toContain('With a request id from list: status <id>');
      // The forms the person's targets do not allow (winrm, port) as syntax, not as examples.
      expect(text).toContain('Requests: rdp|ssh|winrm <vm> <duration>');
      expect(text).toContain('port <port>[/tcp|/udp]');
    });

    it('help, and the "try …" of each refusal, for every principal', async () => {
      const book = await loadPolicyFile(EXAMPLE_POLICY);
      await checkEverySuggestion(h, [...Object.keys(book.principals), 'stranger@contoso.com']);
    }, 120_000);
  });

  describe('a policy with a reason pattern, two source ranges, WinRM and custom ports', () => {
    let h: Harness;
    const dir = mkdtempSync(join(tmpdir(), 'jit-examples-'));
    beforeAll(async () => {
      writeFileSync(join(dir, 'strict.yaml'), STRICT_POLICY);
      h = await startHarness({ JIT_MIN_DURATION: '5m', JIT_POLICY_FILE: join(dir, 'strict.yaml') });
    });
    afterAll(async () => {
      await h?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('help, and the "try …" of each refusal, for every principal', async () => {
      const { text } = await h.cmd('alice@contoso.com', 'help');
      expect(text).toContain('winrm tkt1');
      expect(text).toMatch(/port 8443\/tcp dev1 30m from 198\.51\.100\.0/);
      await checkEverySuggestion(h, ['alice@contoso.com', 'bob@contoso.com', 'carol@contoso.com', 'dave@contoso.com', 'erin@contoso.com', 'mallory@contoso.com']);
    }, 120_000);
  });
});
