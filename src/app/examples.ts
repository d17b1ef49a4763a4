// The commands the bot suggests ("try …" in a refusal, the lines of `help`) are what people paste
// next, so each must work for the person it is shown to: their own targets, a duration the policy
// allows, a source when one is needed, a reason when one is required, ids they can see.
// A suggestion that cannot be made to work becomes one that does (`list`, `help`).
import type { AccessCommand } from '../core/command.js';
import { formatDuration } from '../core/duration.js';
import { parseCommand } from '../core/parse.js';
import { checkAccess, effectivePolicy, exampleVerb, findTarget, type PolicyBook } from '../core/policy.js';
import { can, isApprover } from '../core/rbac.js';
import { ANY, parseSource } from '../core/source.js';
import { checkJustification, resolveStart } from '../core/workflow.js';
import type { AccessRequest, PortSpec, PrincipalId, Target } from '../core/types.js';

export interface ExampleContext {
  book: PolicyBook;
  minDurationMs: number;
  publicUrl?: string;
  now: number;
  timeZone?: string;
  get(id: string): Promise<AccessRequest | null>;
  canSee(actor: PrincipalId, req: AccessRequest): boolean;
}

const requestable = (book: PolicyBook, actor: PrincipalId): Target[] => Object.values(book.targets).filter((t) => can(book, actor, 'request', t.id));
const visibleTargets = (book: PolicyBook, actor: PrincipalId): Target[] =>
  Object.values(book.targets).filter((t) => can(book, actor, 'read', t.id) || can(book, actor, 'request', t.id) || isApprover(book, actor, effectivePolicy(book, t)));
const SAMPLE_SOURCE = '203.0.113.7';

type Want = Partial<Pick<AccessCommand, 'ports' | 'target' | 'durationMs' | 'source' | 'justification' | 'startAt'>>;

/**
 * An access request `actor` could paste and have accepted (RBAC, ports, duration, source,
 * justification, start time), as close to `want` as the policy allows; undefined when they
 * cannot request anything.
 */
export function accessExample(ctx: ExampleContext, actor: PrincipalId, want: Want): string | undefined {
  const mine = requestable(ctx.book, actor);
  const named = want.target ? findTarget(ctx.book, want.target) : undefined;
  const candidates = named && mine.includes(named) ? [named, ...mine.filter((t) => t !== named)] : mine;
  for (const target of candidates) {
    const policy = effectivePolicy(ctx.book, target);
    const first = policy.ports[0];
    if (!first) continue;
    const covered = (ps: PortSpec[]) => ps.every((p) => policy.ports.some((r) => r.port === p.port && (r.protocol === '*' || r.protocol === p.protocol)));
    const ports: PortSpec[] = want.ports && want.ports.length > 0 && covered(want.ports) ? want.ports : [{ port: first.port, protocol: first.protocol }];
    const rules = ports.map((p) => policy.ports.find((r) => r.port === p.port && (r.protocol === '*' || r.protocol === p.protocol))!);
    const maxMs = Math.min(...rules.map((r) => r.maxDurationMs));
    if (maxMs < ctx.minDurationMs) continue;
    const durationMs = Math.min(maxMs, Math.max(ctx.minDurationMs, want.durationMs ?? 3600_000));
    const checked = attempt(() => checkAccess(policy, { ports, durationMs }, ctx.minDurationMs));
    if (!checked) continue;
    const fixed = checked.source;
    let source: string | undefined;
    const given = want.source === undefined ? undefined : attempt(() => parseSource(want.source!));
    if (given !== undefined && passes(() => checkAccess(policy, { ports, durationMs, source: given }, ctx.minDurationMs))) source = want.source;
    else if (fixed === undefined && !ctx.publicUrl) {
      // A source the policy allows on every port: the sample address where Any is allowed, else
      // an address of the first allowed range.
      const options = [SAMPLE_SOURCE, ...rules.flatMap((r) => r.allowedSourcePrefixes.filter((p) => p !== ANY).map((p) => p.split('/')[0]!))];
      source = options.find((s) => passes(() => checkAccess(policy, { ports, durationMs, source: parseSource(s) }, ctx.minDurationMs)));
      if (source === undefined) continue;
    }
    const base = `${exampleVerb(ports)} ${target.name} ${formatDuration(durationMs)}${source !== undefined ? ` from ${source}` : ''}`;
    let reason = want.justification;
    if (!passes(() => checkJustification(policy.justification, reason, base))) {
      reason = ['INC-1234', 'CHG-1234', 'INC-4711 disk full'].find((r) => passes(() => checkJustification(policy.justification, r, base)));
      if (reason === undefined) continue;
    }
    const startAt = want.startAt !== undefined && passes(() => resolveStart(want.startAt!, ctx.now, ctx.timeZone ?? policy.timeZone, base)) ? want.startAt : undefined;
    return `${base}${startAt !== undefined ? ` at ${startAt}` : ''}${reason ? ` reason "${reason}"` : ''}`;
  }
  return undefined;
}

/** `text` if it works for `actor`, else the nearest suggestion that does. */
export async function workingExample(ctx: ExampleContext, actor: PrincipalId, text: string): Promise<string> {
  const cmd = attempt(() => parseCommand(text));
  if (!cmd) return 'help';
  switch (cmd.kind) {
    case 'access':
      return accessExample(ctx, actor, cmd) ?? 'help';
    case 'status':
    case 'revoke':
    case 'extend':
    case 'approve':
    case 'deny': {
      const req = await ctx.get(cmd.requestId);
      if (!req || !ctx.canSee(actor, req)) return cmd.kind === 'approve' || cmd.kind === 'deny' ? 'list pending' : 'list';
      // Whether a decision or a change will be accepted depends on the moment; what the request
      // is now always answers.
      return cmd.kind === 'status' ? text : `status ${req.id}`;
    }
    case 'policy_show': {
      const t = ctx.book.targets[cmd.target];
      const mine = visibleTargets(ctx.book, actor);
      if (t && mine.includes(t)) return text;
      return mine[0] ? `policy ${mine[0].name}` : 'vms';
    }
    case 'policy_enable':
    case 'policy_disable': {
      const t = findTarget(ctx.book, cmd.target);
      if (t && can(ctx.book, actor, 'manage', t.id)) return text;
      const managed = Object.values(ctx.book.targets).find((x) => can(ctx.book, actor, 'manage', x.id));
      if (managed) return `policy ${cmd.kind === 'policy_enable' ? 'enable' : 'disable'} ${managed.name}`;
      const mine = visibleTargets(ctx.book, actor);
      return mine[0] ? `policy ${mine[0].name}` : 'vms';
    }
    case 'audit':
      return cmd.target === undefined || ctx.book.targets[cmd.target] ? text : 'audit since 7d';
    default:
      return text;
  }
}

/** The examples of `help` for `actor`: every one pasteable as is. */
export async function helpExamples(ctx: ExampleContext, actor: PrincipalId, latest: AccessRequest | undefined): Promise<string[]> {
  const out: string[] = [];
  const add = (e: string | undefined) => {
    if (e !== undefined && !out.includes(e)) out.push(e);
  };
  const mine = requestable(ctx.book, actor);
  // The first with a reason (where the policy accepts the sample one), to show the syntax.
  for (const t of mine.slice(0, 3)) add(accessExample(ctx, actor, { target: t.name, ...(out.length === 0 ? { justification: 'INC-1234' } : {}) }));
  // The other verbs, where one of the person's targets allows them.
  const verbs: Array<[string, PortSpec[]]> = [
    ['ssh', [{ port: 22, protocol: 'tcp' }]],
    ['rdp', [{ port: 3389, protocol: 'tcp' }]],
    ['winrm', [{ port: 5985, protocol: 'tcp' }, { port: 5986, protocol: 'tcp' }]],
  ];
  for (const [verb, ports] of verbs) {
    if (out.some((e) => e.startsWith(`${verb} `))) continue;
    const t = mine.find((x) => effectivePolicy(ctx.book, x).ports.some((r) => r.port === ports[0]!.port));
    const e = t ? accessExample(ctx, actor, { target: t.name, ports }) : undefined;
    if (e?.startsWith(`${verb} `)) add(e);
  }
  const other = mine
    .map((t) => ({ t, rule: effectivePolicy(ctx.book, t).ports.find((r) => ![22, 3389, 5985, 5986].includes(r.port)) }))
    .find((x) => x.rule);
  if (other?.rule) add(accessExample(ctx, actor, { target: other.t.name, ports: [{ port: other.rule.port, protocol: other.rule.protocol }] }));
  const scheduled = mine[0] ? accessExample(ctx, actor, { target: mine[0].name, startAt: '14:00' }) : undefined;
  if (scheduled?.includes(' at 14:00')) add(scheduled);
  add('list');
  add('list pending');
  if (latest) add(`status ${latest.id}`);
  add('vms');
  const seen = visibleTargets(ctx.book, actor)[0];
  if (seen) add(`policy ${seen.name}`);
  add('audit since 7d');
  add('help');
  return out;
}

/** The value, or undefined when it throws (a refusal). */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Whether it runs without a refusal. */
const passes = (fn: () => unknown): boolean => {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
};
