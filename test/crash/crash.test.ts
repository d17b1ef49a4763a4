// CI-sized crash runs, one after the other and after the rest of the suite (vitest.config.ts): at
// least 20 SIGKILLs of the real server under load on the simulated network (~25 s), and 5 while it
// drives the Azure adapter against the ARM emulator, which injects faults (~30 s). The invariants
// are the same at any size; `npm run soak` runs 500 and 100 kills, `npm run soak:arm` the second.
import { describe, expect, it } from 'vitest';
import { crashRun, type CrashReport } from './crash.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 20);
const ARM_KILLS = Number(process.env.CRASH_ARM_KILLS ?? 5);

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

  it(`Azure adapter against the ARM emulator with injected faults, ${ARM_KILLS} kills: the same invariants`, async () => {
    // Up 2–5 s between kills, counted from readiness (the Azure SDK takes ~1 s to load, and a fresh
    // replica discovers the VMs' network paths and sweeps before it is ready: seconds on a loaded
    // machine, when a kill 2–5 s after /healthz would land in start-up every time); ~10 requests/s
    // on one VM, so its NSGs (100 priorities for grants) do not fill up; a fault every 1–4 s.
    const report = await crashRun({ kills: ARM_KILLS, network: 'arm', uptimeMs: [2000, 5000], uptimeFromReady: true, requestIntervalMs: 100, log: (l) => process.stderr.write(`${l}\n`) });
    expect(report.faults).toBeGreaterThan(0);
    check(report, ARM_KILLS);
  }, 900_000);
});
