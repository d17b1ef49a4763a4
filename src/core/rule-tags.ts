// How the bot tags the rules it writes, on every network (the simulated file, Azure NSG rules and
// firewall DNAT rules): the name `jit-<request>-<port>[-proto]` and the description
// `jit-bot request=<id> expires=<time>`, which is all the reconciler needs to close a rule whose
// grant is gone (it works with Redis empty).

export const ruleName = (requestId: string, port: number, protocol: string): string =>
  `jit-${requestId}-${port}${protocol === 'tcp' ? '' : `-${protocol === '*' ? 'any' : protocol}`}`;

export const ruleDescription = (requestId: string, expiresAt: number): string =>
  `jit-bot request=${requestId} expires=${new Date(expiresAt).toISOString()}`;

/** Reads back what `ruleDescription` wrote; null for rules this bot did not write. */
export function parseRuleDescription(description: string | undefined): { requestId: string; expiresAt: number } | null {
  const m = /^jit-bot request=([a-z0-9]+) expires=(\S+)$/.exec(description ?? '');
  if (!m) return null;
  const expiresAt = Date.parse(m[2]!);
  return Number.isNaN(expiresAt) ? null : { requestId: m[1]!, expiresAt };
}
