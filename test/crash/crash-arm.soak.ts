// The crash run against the Azure adapter and the ARM emulator with injected faults. Not in CI:
// on a loaded 2-core CI machine it once saw rules open ~10 s past expiry (see the issue note),
// which is being investigated; run it with `npm run soak:arm` (or `npm run soak`).
import { describe, expect, it } from 'vitest';
import { crashRun, type CrashReport } from './crash.js';

const ARM_KILLS = Number(process.env.CRASH_ARM_KILLS ?? 20);

function check(report: CrashReport, kills: number): void {
  process.stderr.write(`crash run (ARM): ${JSON.stringify({ ...report, lateRules: report.lateRules.length, leftOpen: report.leftOpen.length, inconsistent: report.inconsistent.length, auditGaps: report.auditGaps.length, unexplained: report.unexplained.length })}\n`);
  expect(report.kills).toBeGreaterThanOrEqual(kills);
  expect(report.activated).toBeGreaterThan(0);
  expect(report.lateRules).toEqual([]);
  expect(report.leftOpen).toEqual([]);
  expect(report.inconsistent).toEqual([]);
  expect(report.auditGaps).toEqual([]);
  expect(report.unexplained).toEqual([]);
}

describe('crash safety against ARM (soak)', () => {
  it(`Azure adapter against the ARM emulator with injected faults, ${ARM_KILLS} kills: the same invariants`, async () => {
    // Up 2–5 s between kills (the Azure SDK takes ~1 s to load, and a fresh replica discovers the
    // VMs' network paths before its first sweep); ~10 requests/s on one VM, so its NSGs (100
    // priorities for grants) do not fill up; a fault every 1–4 s.
    const report = await crashRun({ kills: ARM_KILLS, network: 'arm', uptimeMs: [2000, 5000], requestIntervalMs: 100, log: (l) => process.stderr.write(`${l}\n`) });
    expect(report.faults).toBeGreaterThan(0);
    check(report, ARM_KILLS);
  }, 900_000);
});
