// The chat platforms this build has, and what bootstrap needs of each beyond the ChatPlatform port.
import type { ChatPlatform } from '../../app/chat/platform.js';
import type { JitService } from '../../app/service.js';
import type { Route } from '../../server.js';

/**
 * Their names are the keys the policy file takes for them (`principals.<p>.<platform>`,
 * `channels.<platform>`, a routing entry's `<platform>:`), the `platform` label of the chat
 * metrics and the origin of the requests made there.
 */
export const CHAT_PLATFORMS = ['slack', 'teams'] as const;

/** A chat platform as bootstrap wires it: the port, its HTTP endpoint, and the use cases it runs. */
export interface ChatAdapter extends ChatPlatform {
  /** Its endpoint on the one HTTP server (commands, clicks, events). */
  readonly route: Route;
  /** Hands it the use cases its commands and clicks run (once the service exists). */
  bind(service: JitService): void;
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
