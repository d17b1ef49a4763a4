// The chat platforms this build has, and what bootstrap needs of each beyond the ChatPlatform port:
// its configuration (variables, checks, factory) and its HTTP endpoint.
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { ChatPlatform } from '../../app/chat/platform.js';
import type { OpsMetrics } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import type { Logger } from '../../log.js';
import type { Route } from '../../server.js';
import { slackConfig } from '../slack/config.js';
import type { TeamsAuthOverrides } from '../teams/auth.js';
import { teamsConfig } from '../teams/config.js';

/** What a platform's factory gets from bootstrap. */
export interface ChatAdapterDeps {
  redis: Redis;
  prefix: string;
  log: Logger;
  metrics: OpsMetrics;
  /** Tests: Bot Framework endpoints other than the public cloud's (only Teams reads it). */
  teamsAuth?: TeamsAuthOverrides;
}

/**
 * A chat platform's configuration, owned by its adapter (`src/adapters/<platform>/config.ts`):
 * its environment variables (merged into the one schema loadConfig validates), the checks across
 * them, and the factory bootstrap calls when it is configured. `E` is the parsed variables it reads.
 */
export interface ChatPlatformConfig<E> {
  readonly name: string;
  readonly env: z.ZodRawShape;
  /** Problems across its variables (each naming a variable); may fill in defaults. */
  check(cfg: E, problems: string[]): void;
  /** What makes this server reachable by others when set (the local channel is off by default then). */
  exposure(cfg: E): string[];
  configured(cfg: E): boolean;
  /** What the start-up log line says of it. */
  mode(cfg: E): string | boolean;
  create(cfg: E, deps: ChatAdapterDeps): Promise<ChatAdapter>;
}

/** The platforms of this build, in the order their checks and endpoints come. */
export const CHAT_PLATFORM_CONFIGS = [slackConfig, teamsConfig] as const;

/**
 * Their names are the keys the policy file takes for them (`principals.<p>.<platform>`,
 * `channels.<platform>`, a routing entry's `<platform>:`), the `platform` label of the chat
 * metrics and the origin of the requests made there.
 */
export const CHAT_PLATFORMS: readonly string[] = CHAT_PLATFORM_CONFIGS.map((c) => c.name);

/** A chat platform as bootstrap wires it: the port, its HTTP endpoint, and the use cases it runs. */
export interface ChatAdapter extends ChatPlatform {
  /** Its endpoint on the one HTTP server (commands, clicks, events). */
  readonly route: Route;
  /** Hands it the use cases its commands and clicks run (once the service exists), and the form and home views. */
  bind(service: JitService, views?: ChatViews): void;
}

/** Awaits a platform API call; a failure is reported to `failed` (the chat metrics) and thrown on. */
export async function counted<T>(call: Promise<T>, failed: (err: unknown) => void): Promise<T> {
  try {
    return await call;
  } catch (err) {
    failed(err);
    throw err;
  }
}
