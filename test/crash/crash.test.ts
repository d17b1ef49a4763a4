// CI-sized crash run: at least 100 SIGKILLs of the real server under load on the simulated
// network (`npm run soak` runs more, and the run against the ARM emulator: test/crash/crash-arm.soak.ts).
import { describe, expect, it } from 'vitest';
import { crashRun, type CrashReport } from './crash.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 100);

function check(report: CrashReport, kills: number): void {
  process.stderr.write(`crash run: ${JSON.stringify({ ...report, lateRules: report.lateRules.length, leftOpen: report.leftOpen.length, inconsistent: report.inconsistent.length, auditGaps: report.auditGaps.length, unexplained: report.unexplained.length })}\n`);
  expect(report.kills).toBeGreaterThanOrEqual(kills);
  expect(report.requests).toBeGreaterThan(kills);
  expect(report.activated).toBeGreaterThan(0);
  expect(report.lateRules).toEqual([]);
  expect(report.leftOpen).toEqual([]);
  expect(report.inconsistent).toEqual([]);
  expect(report.auditGaps).toEqual([]);
  expect(report.unexplained).toEqual([]);
}

describe('crash safety (SIGKILL under load)', () => {
  it(`simulated network, ${KILLS} kills: no rule outlived its grant, nothing left open, every request consistent, no audit gaps`, async () => {
    check(await crashRun({ kills: KILLS, log: (l) => process.stderr.write(`${l}\n`) }), KILLS);
  }, 900_000);
});
