// The network gates this build has, by JIT_NETWORK: bootstrap builds the configured one. Azure's
// SDK loads only when it is the one.
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { NetworkGate } from '../app/ports.js';
import type { Config } from '../config/env.js';
import type { Target } from '../core/types.js';
import type { Logger } from '../log.js';
import { SimulatedGate } from './simulated/gate.js';

export interface NetworkGateDeps {
  redis: Redis;
  prefix: string;
  targets: () => Target[];
  log: Logger;
}

export const NETWORK_GATES: Record<Config['JIT_NETWORK'], (config: Config, deps: NetworkGateDeps) => Promise<NetworkGate>> = {
  simulated: (config) => SimulatedGate.open({ file: join(config.JIT_DATA_DIR, 'simulated-network.json') }),
  azure: async (config, deps) => (await import('./azure/wiring.js')).createAzureGate(config, deps),
  defender: async (config, deps) => (await import('./azure/wiring.js')).createDefenderGate(config, deps),
};
