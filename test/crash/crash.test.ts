// CI-sized crash run: at least 100 SIGKILLs of the real server under load (`npm run soak` runs more).
import { describe, expect, it } from 'vitest';
import { crashRun } from './crash.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 100);

describe('crash safety (SIGKILL under load)', () => {
  it(`after ${KILLS} kills: no rule outlived its grant, nothing left open, every request consistent, no audit gaps`, async () => {
    const report = await crashRun({ kills: KILLS, log: (l) => process.stderr.write(`${l}\n`) });
    process.stderr.write(`crash run: ${JSON.stringify({ ...report, lateRules: report.lateRules.length, leftOpen: report.leftOpen.length, inconsistent: report.inconsistent.length, auditGaps: report.auditGaps.length, unexplained: report.unexplained.length })}\n`);
    expect(report.kills).toBeGreaterThanOrEqual(KILLS);
    expect(report.requests).toBeGreaterThan(KILLS);
    expect(report.activated).toBeGreaterThan(0);
    expect(report.lateRules).toEqual([]);
    expect(report.leftOpen).toEqual([]);
    expect(report.inconsistent).toEqual([]);
    expect(report.auditGaps).toEqual([]);
    expect(report.unexplained).toEqual([]);
  }, 900_000);
});
