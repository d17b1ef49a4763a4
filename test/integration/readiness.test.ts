// /readyz says "starting" until start-up has finished: a load balancer (or a script polling it, as
// the replicas test does) must not send traffic before the local secret is on disk and the first
// reconciler sweep ran. Here the first sweep's list of network rules is held back while /readyz is
// polled; it answered 200 before start-up had finished.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimulatedGate } from '../../src/adapters/simulated/gate.js';
import { freePort, startHarness, type Harness } from './harness.js';

let h: Harness | undefined;
afterAll(async () => h?.close());

describe('readiness during start-up', () => {
  it('/readyz answers 503 "starting" until the first sweep is done and the local secret is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-ready-'));
    const real = await SimulatedGate.open({ file: join(dir, 'net.json') });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let listed = false;
    const gate = Object.assign(Object.create(real) as SimulatedGate, {
      list: async () => {
        listed = true;
        await held;
        return real.list();
      },
    });
    const port = await freePort();
    const starting = startHarness({ PORT: String(port) }, { gate });
    const url = `http://127.0.0.1:${port}/readyz`;
    // The server listens before the first sweep; wait until that sweep is held, then ask.
    for (let i = 0; i < 400 && !listed; i++) await new Promise((r) => setTimeout(r, 25));
    expect(listed).toBe(true);
    const res = await fetch(url);
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 503, body: { status: 'starting' } });
    release();
    h = await starting;
    expect(existsSync(join(h.dir, 'local-token'))).toBe(true);
    expect((await fetch(url)).status).toBe(200);
  });
});
