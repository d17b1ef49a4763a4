// Builds the Azure gates from configuration: DefaultAzureCredential (managed identity, workload
// identity, environment, Azure CLI) or a static token, the ARM endpoint (sovereign clouds, the
// emulator) and an optional extra CA.
import { readFile } from 'node:fs/promises';
import { DefaultAzureCredential, type AccessToken, type TokenCredential } from '@azure/identity';
import type { Redis } from 'ioredis';
import type { AzureEnv } from './config.js';
import type { Target } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { DefenderGate } from './defender.js';
import { AzureGate } from './gate.js';

async function armAccess(config: AzureEnv): Promise<{ credential: TokenCredential; caCert?: string }> {
  const credential: TokenCredential = config.AZURE_ACCESS_TOKEN
    ? { getToken: async (): Promise<AccessToken> => ({ token: config.AZURE_ACCESS_TOKEN!, expiresOnTimestamp: Date.now() + 3600_000 }) }
    : new DefaultAzureCredential(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST } : {});
  let caCert: string | undefined;
  if (config.AZURE_ARM_CA_FILE) {
    try {
      caCert = await readFile(config.AZURE_ARM_CA_FILE, 'utf8');
    } catch (err) {
      throw new Error(`AZURE_ARM_CA_FILE: cannot read ${config.AZURE_ARM_CA_FILE} (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  return { credential, ...(caCert ? { caCert } : {}) };
}

/**
 * JIT_NETWORK=defender: Defender for Cloud's JIT VM access over the Security resource provider, in
 * the subscriptions of AZURE_SUBSCRIPTION_ID; with JIT_DEFENDER_NSG_FALLBACK an NSG gate deletes
 * Defender's own rule when Defender will not end a request early.
 */
export async function createDefenderGate(config: AzureEnv, deps: { redis: Redis; prefix: string; targets: () => Target[]; log: Logger }): Promise<DefenderGate> {
  const { credential, caCert } = await armAccess(config);
  const subscriptions = (config.AZURE_SUBSCRIPTION_ID ?? '').split(',').filter(Boolean);
  return new DefenderGate({
    credential,
    endpoint: config.AZURE_ARM_ENDPOINT,
    ...(caCert ? { caCert } : {}),
    subscriptions,
    writeDeadlineMs: config.AZURE_WRITE_DEADLINE,
    requestTimeoutMs: config.AZURE_REQUEST_TIMEOUT,
    readConcurrency: config.AZURE_READ_CONCURRENCY,
    pollIntervalMs: config.AZURE_POLL_INTERVAL_MS,
    ...(config.JIT_DEFENDER_NSG_FALLBACK ? { nsgFallback: await createAzureGate(config, deps) } : {}),
    log: (msg, fields) => deps.log.warn(msg, fields),
  });
}

export async function createAzureGate(config: AzureEnv, deps: { redis: Redis; prefix: string; targets: () => Target[]; log: Logger }): Promise<AzureGate> {
  const { credential, caCert } = await armAccess(config);
  return new AzureGate({
    credential,
    endpoint: config.AZURE_ARM_ENDPOINT,
    ...(caCert ? { caCert } : {}),
    priorityRange: config.JIT_NSG_PRIORITY_RANGE,
    denyPriorityRange: config.JIT_NSG_DENY_PRIORITY_RANGE,
    nsgWrites: config.JIT_NSG_WRITES,
    writeDeadlineMs: config.AZURE_WRITE_DEADLINE,
    firewallDeadlineMs: config.AZURE_FIREWALL_WRITE_DEADLINE,
    scopeSweepIntervalMs: config.AZURE_SCOPE_SWEEP_INTERVAL,
    readConcurrency: config.AZURE_READ_CONCURRENCY,
    pollIntervalMs: config.AZURE_POLL_INTERVAL_MS,
    requestTimeoutMs: config.AZURE_REQUEST_TIMEOUT,
    redis: deps.redis,
    lockPrefix: deps.prefix,
    targets: deps.targets,
    ...(config.AZURE_SUBSCRIPTION_ID ? { subscriptions: config.AZURE_SUBSCRIPTION_ID.split(',') } : {}),
    log: (msg, fields) => deps.log.warn(msg, fields),
  });
}
