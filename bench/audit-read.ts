// Benchmark: the cost of one `audit` read (issue 17, item 6), by a principal with no role and by a
// JIT Admin, with N requests (2 audit events each: created, denied) in Redis. Not a test: prints
// figures. The read rate limits are off here: this measures one call's cost, not the limiter.
//
//   npx tsx bench/audit-read.ts                 (5,000 requests)
//   BENCH_REQUESTS=1000 npx tsx bench/audit-read.ts
//
// Loopback only: Redis at REDIS_URL (default 127.0.0.1:6379), under a throw-away key prefix.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startJit } from '../src/bootstrap.js';
import { silentLogger } from '../src/log.js';
import { TEST_POLICY_YAML } from '../test/fixtures/book.js';
import { deleteKeys } from '../test/integration/harness.js';
import { principalId as p } from '../src/core/ids.js';

const N = Number(process.env.BENCH_REQUESTS ?? 5000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-audit-'));
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
  const prefix = `bench-audit-${Math.random().toString(36).slice(2, 8)}`;
  const app = await startJit({
    env: {
      PORT: '0', HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      JIT_REQUEST_RATE: 'off', JIT_READ_RATE: 'off', JIT_AUDIT_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0',
    },
    log: silentLogger,
  });
  const svc = app.service;
  try {
    const t0 = performance.now();
    const batch = 20;
    for (let i = 0; i < N; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, N - i) }, async (_, j) => {
          const r = await svc.execute(p('alice@contoso.com'), `rdp vm1 1h from 203.0.113.${((i + j) % 250) + 1}`, { via: 'bench' });
          if (!('request' in r)) throw new Error(JSON.stringify(r));
          await svc.execute(p('bob@contoso.com'), `deny ${r.request.id} reason "bench"`, { via: 'bench' });
        }),
      );
    }
    console.log(`populated ${N} requests (${2 * N} audit events) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const time = async (who: string, text = 'audit', runs = 5): Promise<{ ms: number; rows: number }> => {
      let best = Infinity;
      let rows = 0;
      for (let k = 0; k < runs; k++) {
        const s = performance.now();
        const r = await svc.execute(p(who), text, { via: 'bench' });
        best = Math.min(best, performance.now() - s);
        rows = r.kind === 'audit' ? r.rows.length : -1;
      }
      return { ms: best, rows };
    };
    for (const who of ['mallory@contoso.com', 'dave@contoso.com', 'erin@contoso.com', 'alice@contoso.com']) {
      const { ms, rows } = await time(who);
      console.log(`audit by ${who.padEnd(22)} best of 5: ${ms.toFixed(1).padStart(8)} ms, ${rows} rows`);
    }
    // A quiet target (dev1: no events) beside a busy one: the read follows the target's own index.
    const quiet = await time('dave@contoso.com', 'audit dev1');
    console.log(`audit dev1 (quiet) by dave@contoso.com   best of 5: ${quiet.ms.toFixed(1).padStart(8)} ms, ${quiet.rows} rows`);
    const s = performance.now();
    await Promise.all(Array.from({ length: 8 }, () => svc.execute(p('mallory@contoso.com'), 'audit', { via: 'bench' })));
    console.log(`8 parallel audits by mallory (no role): ${(performance.now() - s).toFixed(1)} ms in all`);
  } finally {
    await app.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
