// The Defender gate's options (see defender.ts).
import type { TokenCredential } from '@azure/identity';
import type { AzureGate } from './gate.js';

export interface DefenderGateOptions {
  credential: TokenCredential;
  /** ARM endpoint (sovereign clouds, the emulator); default https://management.azure.com. */
  endpoint?: string;
  caCert?: string;
  /** Subscriptions whose JIT policies (and VMs) the bot reads. */
  subscriptions: string[];
  /** How long an initiate keeps retrying 429 / 5xx, and how long the bot waits for Defender to show a request `Initiated`. */
  writeDeadlineMs?: number;
  requestTimeoutMs?: number;
  readDeadlineMs?: number;
  readConcurrency?: number;
  /** How often the policy is read while waiting for Defender to apply a request. */
  pollIntervalMs?: number;
  /**
   * The documented fallback when Defender will not end a request early: delete Defender's own
   * Allow rule from the VM's NSGs through the NSG gate (its role needs NSG rule read / delete).
   */
  nsgFallback?: AzureGate;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  sleep?: (ms: number) => Promise<void>;
}
