// Benchmark: the chat-native forms and home views (issue 20) at size. Not a test: prints figures.
// The real stack in-process (startJit, Redis store, simulated gate), a policy with BENCH_TARGETS
// VMs one person may request, and BENCH_PENDING requests waiting for one approver:
//   - requestForm (every VM sorted, then one VM's choices) and searchTargets (the typeahead);
//   - submitForm through the use case (a request created each time);
//   - homeView of the approver (their queue of BENCH_PENDING, checked request by request) and of
//     the requester.
//
//   npm run bench:forms                      (1,000 VMs, 200 pending)
//   BENCH_TARGETS=5000 BENCH_PENDING=500 npm run bench:forms
//
// Loopback only: Redis at REDIS_URL (default 127.0.0.1:6379), under a throw-away key prefix.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startJit } from '../src/bootstrap.js';
import { silentLogger } from '../src/log.js';
import { PROD, TEST_POLICY_YAML, vmId } from '../test/fixtures/book.js';
import { deleteKeys } from '../test/integration/harness.js';
import { summary } from './lib.js';
import { principalId as p } from '../src/core/ids.js';

const TARGETS = Number(process.env.BENCH_TARGETS ?? 1000);
const PENDING = Number(process.env.BENCH_PENDING ?? 200);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const name = (i: number) => `bulk${String(i).padStart(5, '0')}`;

async function timed<T>(runs: number, f: (i: number) => Promise<T> | T): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await f(i);
    out.push(performance.now() - s);
  }
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-forms-'));
  // alice may request every bulk VM (they sit in prod, under the test policy's approvers).
  const many = Array.from({ length: TARGETS }, (_, i) => `  ${name(i)}: { id: ${vmId(PROD, name(i))}, os: ${i % 2 ? 'linux' : 'windows'} }\n`).join('');
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML.replace('targets:\n', `targets:\n${many}`));
  const prefix = `bench-forms-${Math.random().toString(36).slice(2, 8)}`;
  const app = await startJit({
    env: {
      PORT: '0', HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      JIT_REQUEST_RATE: 'off', JIT_READ_RATE: 'off', JIT_AUDIT_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0',
    },
    log: silentLogger,
  });
  const { views } = app;
  try {
    const alice = p('alice@contoso.com');
    const first = views.requestForm(alice, 'bench');
    if (!first.ok) throw new Error(first.reason);
    console.log(`alice may request ${first.count} VMs (typeahead: ${first.typeahead})`);
    summary(`requestForm, ${first.count} VMs, none chosen`, await timed(200, () => views.requestForm(alice, 'bench')));
    summary(`requestForm, ${first.count} VMs, one chosen`, await timed(200, (i) => views.requestForm(alice, 'bench', { target: name(i % TARGETS) })));
    summary(`searchTargets "bulk00" (${views.searchTargets(alice, 'bulk00').length} options)`, await timed(200, () => views.searchTargets(alice, 'bulk00')));
    const submits = await timed(PENDING, async (i) => {
      const r = await views.submitForm(alice, 'bench', { target: name(i % TARGETS), access: i % 2 ? 'ssh' : 'rdp', duration: '3600000', source: `203.0.113.${(i % 250) + 1}`, justification: 'bench' });
      if (!r.ok || r.reply.kind !== 'pending_approval') throw new Error(JSON.stringify(r));
    });
    summary(`submitForm → request created (${PENDING})`, submits);
    await app.homesSettled();
    const bob = await views.homeView(p('bob@contoso.com'), 'bench');
    console.log(`bob's queue: ${bob.approvals.items.length} shown, ${bob.approvals.more} more`);
    summary(`homeView of an approver with ${PENDING} waiting`, await timed(50, () => views.homeView(p('bob@contoso.com'), 'bench')));
    summary(`homeView of the requester (${PENDING} waiting)`, await timed(50, () => views.homeView(alice, 'bench')));
  } finally {
    await app.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
