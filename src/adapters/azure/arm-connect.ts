// The one place an ArmClient is built from a gate's options (AzureGate and DefenderGate), with the
// defaults both share: the public cloud's endpoint, a 20 s request timeout, a 30 s read deadline,
// 8 reads at once.
import type { TokenCredential } from '@azure/identity';
import { ArmClient } from './arm.js';

/** What a gate's options say about reaching ARM. */
export interface ArmConnectOptions {
  credential: TokenCredential;
  endpoint?: string;
  caCert?: string;
  requestTimeoutMs?: number;
  readDeadlineMs?: number;
  readConcurrency?: number;
}

export function connectArm(opts: ArmConnectOptions, pollMs: number, sleep: (ms: number) => Promise<void>, log: (msg: string, fields?: Record<string, unknown>) => void): ArmClient {
  return new ArmClient({
    credential: opts.credential,
    endpoint: opts.endpoint ?? 'https://management.azure.com',
    ...(opts.caCert ? { caCert: opts.caCert } : {}),
    timeoutMs: opts.requestTimeoutMs ?? 20_000,
    pollMs,
    readDeadlineMs: opts.readDeadlineMs ?? 30_000,
    readConcurrency: opts.readConcurrency ?? 8,
    sleep,
    log,
  });
}
