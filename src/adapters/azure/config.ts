// Azure's part of the configuration (JIT_NETWORK=azure and defender): its variables and the
// checks across them. The gates themselves are built in wiring.ts, which loads the Azure SDK.
import { z } from 'zod';
import { bool, durationVar, priorityRange, type EnvOf, type SharedEnv } from '../../config/vars.js';

export const azureEnv = {
  AZURE_SUBSCRIPTION_ID: z.string().regex(/^[0-9a-zA-Z-]+(,[0-9a-zA-Z-]+)*$/, 'must be a subscription id (or several, comma-separated)').optional(),
  AZURE_ARM_ENDPOINT: z.url({ message: 'must be the Resource Manager URL, e.g. https://management.azure.com or https://management.usgovcloudapi.net' }).default('https://management.azure.com'),
  AZURE_AUTHORITY_HOST: z.url({ message: 'must be the Entra ID authority, e.g. https://login.microsoftonline.us' }).optional(),
  AZURE_ARM_CA_FILE: z.string().min(1).optional(),
  /** A static bearer token instead of DefaultAzureCredential (the ARM emulator, short-lived CI jobs). */
  AZURE_ACCESS_TOKEN: z.string().min(1).optional(),
  JIT_NSG_PRIORITY_RANGE: priorityRange('100-199'),
  JIT_NSG_DENY_PRIORITY_RANGE: priorityRange('4000-4096'),
  /**
   * How NSG rules are written (docs/security.md, "How NSG rules are written"): `auto` batches every
   * change queued for an NSG into one whole-NSG PUT (If-Match), and falls back to child-rule
   * operations on an NSG where ARM refuses that (the role lacks networkSecurityGroups/write, an
   * application security group's join action, an Azure Policy deny); `rules`: child rules only.
   */
  JIT_NSG_WRITES: z.enum(['auto', 'rules'], { message: 'must be auto (whole-NSG writes where allowed, else child rules) or rules (child rules only)' }).default('auto'),
  AZURE_WRITE_DEADLINE: durationVar('60s'),
  AZURE_REQUEST_TIMEOUT: durationVar('20s'),
  AZURE_POLL_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  AZURE_FIREWALL_WRITE_DEADLINE: durationVar('30m'),
  AZURE_SCOPE_SWEEP_INTERVAL: z.union([z.literal('0').transform(() => 0), durationVar('5m')]).default(5 * 60_000),
  AZURE_READ_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
  /**
   * JIT_NETWORK=defender: when Defender for Cloud will not end a request early, delete Defender's
   * own Allow rule from the VM's NSGs (the identity then also needs NSG rule read / delete).
   */
  JIT_DEFENDER_NSG_FALLBACK: bool(false),
};
export type AzureEnv = EnvOf<typeof azureEnv>;

export function checkAzure(cfg: AzureEnv & SharedEnv, problems: string[]): void {
  if (cfg.AZURE_ARM_CA_FILE && cfg.JIT_NETWORK === 'simulated') problems.push('AZURE_ARM_CA_FILE: only used with JIT_NETWORK=azure or defender');
  if (cfg.JIT_NETWORK === 'defender' && !cfg.AZURE_SUBSCRIPTION_ID) {
    problems.push('AZURE_SUBSCRIPTION_ID: missing; JIT_NETWORK=defender lists Defender for Cloud\'s JIT policies per subscription: name the subscription(s), comma-separated');
  }
  if (cfg.JIT_NSG_WRITES !== 'auto' && cfg.JIT_NETWORK === 'simulated') problems.push('JIT_NSG_WRITES: only used with JIT_NETWORK=azure or defender');
  if (cfg.JIT_DEFENDER_NSG_FALLBACK && cfg.JIT_NETWORK !== 'defender') problems.push('JIT_DEFENDER_NSG_FALLBACK: only used with JIT_NETWORK=defender');
}
