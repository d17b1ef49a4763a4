// Property-based fuzzing of what hostile input reaches first: the command parser and the policy
// file loader. Every input either parses or is refused with a JitError / PolicyFileError that has a
// message; nothing crashes or hangs. CI runs FUZZ_RUNS (default 3,000 per property); the soak form
// (`FUZZ_RUNS=100000 npx vitest run test/unit/fuzz.test.ts`) runs 100,000.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyFileError, parsePolicyText } from '../../src/config/policy-file.js';
import { isJitError } from '../../src/core/errors.js';
import { parseCommand } from '../../src/core/parse.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';

// A fixed amount of CPU work (generated cases): the timeout only catches a hang, and a loaded
// 2-core machine can take several times the 20 s default for it.
const CPU_BOUND_MS = 120_000;

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

const WORDS = ['rdp', 'ssh', 'winrm', 'port', 'list', 'status', 'revoke', 'extend', 'approve', 'deny', 'policy', 'enable', 'vms', 'help', 'vm1', 'from', 'reason', 'at', '2h', '99h', '0s', 'PT2H', '14:00', '2026-11-26T14:00Z', '203.0.113.7', '2001:db8::1/64', '*', '"', '""', 'r7k2m9q4xw', '22/tcp', '65536', '3389,22', '<!channel>', '<@U1>', '\u0000', '💥', '/jit'];

// A guard against catastrophic backtracking (a parse that effectively hangs), not a speed goal: it
// counts this process's own CPU time, which another process's load does not stretch as it does the
// wall clock (a 250 ms wall-clock bound failed once under a load of 8), with a bound ~1,000 times a
// normal parse's.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function expectRefusalOrParse(input: string): void {
  const t0 = cpuMs();
  try {
    parseCommand(input);
  } catch (e) {
    expect(isJitError(e), `non-JitError for ${JSON.stringify(input)}: ${String(e)}`).toBe(true);
    expect((e as Error).message.length).toBeGreaterThan(0);
  }
  expect(cpuMs() - t0, `a parse that runs away on ${JSON.stringify(input).slice(0, 80)}`).toBeLessThan(1000);
}

describe('fuzz: command parser', { timeout: CPU_BOUND_MS }, () => {
  it('arbitrary strings: parsed or refused with a message', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), expectRefusalOrParse), { numRuns: RUNS });
  });

  it('unicode and control characters', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), expectRefusalOrParse), { numRuns: RUNS });
  });

  it('sentences of grammar words in random order (the inputs closest to valid)', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(...WORDS), { maxLength: 12 }), (ws) => expectRefusalOrParse(ws.join(' '))), { numRuns: RUNS });
  });

  it('very long inputs are refused quickly', () => {
    fc.assert(fc.property(fc.string({ minLength: 2000, maxLength: 20_000 }), expectRefusalOrParse), { numRuns: Math.min(RUNS, 200) });
  });
});

describe('fuzz: policy file loader', { timeout: CPU_BOUND_MS }, () => {
  const lines = TEST_POLICY_YAML.split('\n');

  function expectLoadOrError(text: string): void {
    try {
      parsePolicyText(text, 'fuzz.yaml');
    } catch (e) {
      expect(e instanceof PolicyFileError, `unexpected ${String(e)} for\n${text.slice(0, 300)}`).toBe(true);
      expect((e as PolicyFileError).message).toMatch(/fuzz\.yaml/);
    }
  }

  it('random YAML-ish text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), expectLoadOrError), { numRuns: Math.min(RUNS, 2000) });
  });

  it('the test policy with lines dropped, duplicated or mutated', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(lines.length - 1), fc.constantFrom('drop', 'dup', 'garble', 'indent'), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 5 }),
        (edits) => {
          const out = [...lines];
          for (const [i, op, junk] of edits) {
            const at = Math.min(i, out.length - 1);
            if (op === 'drop') out.splice(at, 1);
            else if (op === 'dup') out.splice(at, 0, out[at] ?? '');
            else if (op === 'garble') out[at] = `${(out[at] ?? '').slice(0, Math.max(0, (out[at] ?? '').length - junk.length))}${junk}`;
            else out[at] = ` ${out[at] ?? ''}`;
          }
          expectLoadOrError(out.join('\n'));
        },
      ),
      { numRuns: Math.min(RUNS, 2000) },
    );
  });
});
