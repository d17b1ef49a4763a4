import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArmEmulator } from './test/fakes/arm.js';
import { TEST_POLICY_YAML } from './test/fixtures/book.js';
const arm = await new ArmEmulator({ latencyMs: 20 }).start();
for (const [rg, name, ip] of [['prod', 'vm1', '10.0.0.4'], ['prod', 'db1', '10.0.0.5'], ['dev', 'dev1', '10.1.0.4'], ['prod', 'quorum2', '10.0.0.6'], ['prod', 'quick1', '10.0.0.7']] as const) arm.standardVm('sub1', rg, name, ip);
const dir = mkdtempSync(join(tmpdir(), 'st-'));
writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
const t0 = Date.now();
const c = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, PORT: '7900', HOST: '127.0.0.1', JIT_KEY_PREFIX: 'st-x', JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s', JIT_RECONCILE_INTERVAL: '1s', LOG_LEVEL: 'info',
  JIT_NETWORK: 'azure', AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'x', AZURE_POLL_INTERVAL_MS: '5', AZURE_WRITE_DEADLINE: '20s', AZURE_REQUEST_TIMEOUT: '2s' }, stdio: ['ignore', 'pipe', 'pipe'] });
c.stderr.on('data', (d) => process.stdout.write(`[${Date.now() - t0}] ${d}`));
c.stdout.on('data', (d) => process.stdout.write(`[${Date.now() - t0}] ${d}`));
await new Promise((r) => setTimeout(r, 6000));
c.kill();
await arm.close();
