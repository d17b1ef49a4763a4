// Where each chat platform posted each request's cards (MessageRefs): one Redis set per platform,
// card and request, `<prefix>:<platform>:cards:<req|ext>:<request id>`, kept 30 days. SADD is
// atomic and commutative, so copies posted at once by several replicas are all kept.
import type { Redis } from 'ioredis';
import type { CardScope } from '../../core/messages.js';
import { parsePrincipal } from '../../core/ids.js';
import type { MessageRefs, PostedMessage } from '../../app/chat/platform.js';

const TTL_S = 30 * 86_400;

export class RedisMessageRefs implements MessageRefs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(platform: string, scope: CardScope, requestId: string): string {
    return `${this.prefix}:${platform}:cards:${scope === 'extension' ? 'ext' : 'req'}:${requestId}`;
  }

  async add(platform: string, scope: CardScope, requestId: string, messages: PostedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const key = this.key(platform, scope, requestId);
    await this.redis
      .multi()
      .sadd(key, ...messages.map((m) => JSON.stringify({ ref: m.ref, ...(m.viewer ? { viewer: m.viewer } : {}) })))
      .expire(key, TTL_S)
      .exec();
  }

  async list(platform: string, scope: CardScope, requestId: string): Promise<PostedMessage[]> {
    return (await this.redis.smembers(this.key(platform, scope, requestId))).map(decode);
  }
}

/**
 * A member as written, or as the adapters wrote it before the shared notifier (cards still shown
 * after an upgrade): the member is then the platform's reference itself, with its `viewer` if any.
 */
function decode(member: string): PostedMessage {
  let o: unknown;
  try {
    o = JSON.parse(member);
  } catch {
    return { ref: member };
  }
  const { ref, viewer } = (o ?? {}) as { ref?: unknown; viewer?: unknown };
  const who = typeof viewer === 'string' ? parsePrincipal(viewer) : undefined;
  return { ref: typeof ref === 'string' ? ref : member, ...(who ? { viewer: who } : {}) };
}
