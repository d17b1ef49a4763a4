// The policy file's schema (zod): every key, its type and its message when wrong. The parser
// (policy-file.ts) runs it and then checks what spans keys (groups named, ports listed twice).
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDuration, parseDuration } from '../core/duration.js';
import { isJitError } from '../core/errors.js';
import { ROLE_NAMES, type GroupSource, type RoleName } from '../core/policy.js';
import { parsePrincipal, parsePrincipalRef, parseTargetName, type PrincipalId, type PrincipalRef, type TargetName } from '../core/ids.js';
import { parseSource } from '../core/source.js';
import type { ApprovalRule, PortRule, PortSpec, Protocol } from '../core/types.js';
import { WEEKDAYS, type AutoApproveRule, type PlatformRoute, type ReminderRule, type RoutingRule, type TimeWindow, type Weekday } from '../core/workflow.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) {
      ctx.addIssue({ code: 'custom', message: `${v} is not a duration; write 3h, 90m or PT3H` });
      return z.NEVER;
    }
    return v * 1000; // bare numbers are seconds
  }
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write 3h, 90m, 45s or ISO-8601 PT3H${isJitError(e) ? '' : ''}` });
    return z.NEVER;
  }
});

const armId = z
  .string()
  .refine((s) => s.startsWith('/'), { message: 'must be an ARM resource id or scope starting with "/" (e.g. /subscriptions/<id>/resourceGroups/<rg>)' });

const email = z.string().transform((s, ctx): PrincipalId => {
  const p = parsePrincipal(s);
  if (p === undefined) ctx.addIssue({ code: 'custom', message: 'must be an email / UPN like alice@contoso.com' });
  return p ?? z.NEVER;
});

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * A group: a literal list of members, or `{ members?, entra?, slack? }` whose members also come from
 * an Entra ID group (its object id; transitive membership) and / or a Slack user group (S…).
 */
const groupObject = z
  .object({
    members: z.array(email).default([]),
    entra: z.string().refine((v) => GUID_RE.test(v), { message: 'must be the Entra ID group\'s object id (a GUID like 0b6f1a52-3c1e-4d7e-9a55-2f3c4d5e6f70)' }).optional(),
    slack: z.string().regex(/^S[A-Z0-9]{2,}$/, 'must be a Slack user group id like S0614TZR7 (usergroups.list shows it)').optional(),
  })
  .strict()
  .refine((g) => g.members.length > 0 || g.entra !== undefined || g.slack !== undefined, { message: 'needs members, entra: <group object id> or slack: <user group id>' });
// A list or an object, each checked by its own schema so that errors name the bad key (a union
// would only say "Invalid input").
const groupDef = z.unknown().transform((v, ctx): { members: PrincipalId[]; sources: GroupSource[] } => {
  const r = Array.isArray(v) ? z.array(email).safeParse(v) : groupObject.safeParse(v);
  if (!r.success) {
    for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path as PropertyKey[], message: i.message });
    return z.NEVER;
  }
  if (Array.isArray(r.data)) return { members: r.data, sources: [] };
  const g = r.data;
  return {
    members: g.members,
    sources: [...(g.entra ? [{ kind: 'entra' as const, id: g.entra.toLowerCase() }] : []), ...(g.slack ? [{ kind: 'slack' as const, id: g.slack }] : [])],
  };
});

const principalRef = z.string().transform((s, ctx): PrincipalRef => {
  const r = parsePrincipalRef(s);
  if (r === undefined) ctx.addIssue({ code: 'custom', message: 'must be a principal (alice@contoso.com) or a group (group:oncall)' });
  return r ?? z.NEVER;
});

const targetName = z.string().transform((s, ctx): TargetName => {
  const t = parseTargetName(s);
  if (t === undefined) ctx.addIssue({ code: 'custom', message: 'must be a VM name (letters, digits, . _ -, starting with a letter or digit)' });
  return t ?? z.NEVER;
});

const sourcePrefix = z.string().transform((v, ctx) => {
  try {
    return parseSource(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: isJitError(e) ? e.message : `"${v}" is not an address or CIDR` });
    return z.NEVER;
  }
});

const protocol = z
  .enum(['tcp', 'udp', '*', 'any', 'TCP', 'UDP', 'Any', 'ANY'])
  .transform((p): Protocol => (p.toLowerCase() === 'any' ? '*' : (p.toLowerCase() as Protocol)));

const portRule = z
  .object({
    port: z.number().int().min(1, 'must be a port 1-65535').max(65535, 'must be a port 1-65535'),
    protocol: protocol.default('tcp'),
    allowedSourcePrefixes: z.array(sourcePrefix).min(1, 'needs at least one prefix ("*" for Any)').default(['*']),
    maxDuration: duration.default(3 * 3600),
  })
  .strict()
  .transform((r): PortRule => ({ port: r.port, protocol: r.protocol, allowedSourcePrefixes: r.allowedSourcePrefixes, maxDurationMs: r.maxDuration }));

const approval = z
  .object({
    required: z.boolean().optional(),
    approvers: z.array(principalRef).optional(),
    quorum: z.number().int().min(1, 'must be at least 1').optional(),
    timeout: duration.optional(),
    selfApproval: z.boolean().optional(),
    denyQuorum: z.number().int().min(1, 'must be at least 1').optional(),
    escalation: z
      .object({ after: duration, approvers: z.array(principalRef).min(1, 'needs at least one approver') })
      .strict()
      .optional(),
  })
  .strict()
  .transform((a): Partial<ApprovalRule> => {
    const out: Partial<ApprovalRule> = {};
    if (a.required !== undefined) out.required = a.required;
    if (a.approvers !== undefined) out.approvers = a.approvers;
    if (a.quorum !== undefined) out.quorum = a.quorum;
    if (a.timeout !== undefined) out.timeoutMs = a.timeout;
    if (a.selfApproval !== undefined) out.selfApproval = a.selfApproval;
    if (a.denyQuorum !== undefined) out.denyQuorum = a.denyQuorum;
    if (a.escalation !== undefined) out.escalation = { afterMs: a.escalation.after, approvers: a.escalation.approvers };
    return out;
  });

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM (24-hour), e.g. 08:00');
const timeZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IANA time zone like Europe/Berlin or UTC' },
);
const weekday = z.enum(WEEKDAYS as [Weekday, ...Weekday[]], { message: `must be one of ${WEEKDAYS.join(', ')}` });
const portRef = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}\/(tcp|udp|\*)$/i, 'must be a port like 22 or 53/udp')]).transform(
  (v): PortSpec => (typeof v === 'number' ? { port: v, protocol: 'tcp' } : { port: Number(v.split('/')[0]), protocol: v.split('/')[1]!.toLowerCase() as Protocol }),
);

const autoApproveRule = z
  .object({
    name: z.string().min(1),
    principals: z.array(principalRef).default([]),
    ports: z.array(portRef).default([]),
    maxDuration: duration.optional(),
    windows: z
      .array(z.object({ days: z.array(weekday).min(1), from: hhmm, to: hhmm, timeZone: timeZone.default('UTC') }).strict())
      .default([]),
    onCall: z.object({ schedules: z.array(z.string().min(1)).min(1) }).strict().optional(),
  })
  .strict()
  .transform((r): AutoApproveRule => ({
    name: r.name,
    principals: r.principals,
    ports: r.ports,
    ...(r.maxDuration !== undefined ? { maxDurationMs: r.maxDuration } : {}),
    windows: r.windows as TimeWindow[],
    onCallSchedules: r.onCall?.schedules ?? [],
  }));

const justificationRule = z
  .object({
    required: z.boolean().optional(),
    pattern: z
      .string()
      .refine((p) => {
        try {
          new RegExp(p);
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression')
      .optional(),
    hint: z.string().max(200).optional(),
  })
  .strict();

const reminderRule = z
  .object({
    before: duration.optional(),
    // Each choice becomes a button whose action id is its duration: Slack refuses two alike in a block.
    extendOptions: z
      .array(duration)
      .max(4)
      .superRefine((ms, ctx) => {
        ms.forEach((v, i) => {
          if (ms.indexOf(v) < i) ctx.addIssue({ code: 'custom', path: [i], message: `${formatDuration(v)} is listed twice (as extendOptions[${ms.indexOf(v)}])` });
        });
      })
      .optional(),
  })
  .strict()
  .transform((r): Partial<ReminderRule> => ({
    ...(r.before !== undefined ? { beforeMs: r.before } : {}),
    ...(r.extendOptions !== undefined ? { extendOptionsMs: r.extendOptions } : {}),
  }));

const platformRoute = z
  .object({ channel: z.string().min(1).optional(), dm: z.boolean().default(false) })
  .strict()
  .refine((r) => r.channel !== undefined || r.dm, { message: 'needs a channel, or dm: true, or both' })
  .transform((r): PlatformRoute => ({ ...(r.channel ? { channel: r.channel } : {}), dm: r.dm }));

/** A chat platform's name, as the keys of `principals.<p>`, `channels` and routing entries spell it (`slack`, `teams` ...). */
const PLATFORM_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
const PLATFORM_NAME_HINT = 'is not a chat platform name (lower-case letters, digits and -, like slack or teams)';
/** A record keyed by chat platform name, each key checked (zod's own key errors do not say why). */
const byPlatform = <T extends z.ZodType>(value: T) =>
  z.record(z.string(), value).superRefine((r, ctx) => {
    for (const k of Object.keys(r)) if (!PLATFORM_NAME_RE.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: PLATFORM_NAME_HINT });
  });

const ROUTING_KEYS = new Set(['name', 'when']);
const routingRule = z
  .object({
    name: z.string().min(1),
    when: z
      .object({
        targets: z.array(targetName).default([]),
        ports: z.array(portRef).default([]),
        roles: z.array(z.enum(ROLE_NAMES as [RoleName, ...RoleName[]], { message: `must be one of ${ROLE_NAMES.join(', ')}` })).default([]),
      })
      .strict()
      .optional(),
  })
  // Every other key names a chat platform and says where requests go there.
  .catchall(platformRoute)
  .superRefine((r, ctx) => {
    const platforms = Object.keys(r).filter((k) => !ROUTING_KEYS.has(k));
    for (const k of platforms) if (!PLATFORM_NAME_RE.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: PLATFORM_NAME_HINT });
    if (platforms.length === 0) ctx.addIssue({ code: 'custom', message: 'needs a destination on at least one chat platform, like slack: { channel: C0123 } or teams: { dm: true }' });
  })
  .transform((r): RoutingRule => {
    const platforms: Record<string, PlatformRoute> = {};
    for (const [k, v] of Object.entries(r)) if (!ROUTING_KEYS.has(k)) platforms[k] = v as PlatformRoute;
    return {
      name: r.name,
      targets: r.when?.targets ?? [],
      ports: r.when?.ports ?? [],
      roles: r.when?.roles ?? [],
      platforms,
    };
  });

const channelPair = z.object({ approvals: z.string().optional(), audit: z.string().optional() }).strict();

export const fileSchema = z
  .object({
    principals: z
      .record(z.string(), byPlatform(z.string()).nullable())
      .default({}),
    groups: z.record(z.string(), groupDef).default({}),
    roles: z
      .array(
        z
          .object({
            principal: principalRef,
            role: z.enum(ROLE_NAMES as [RoleName, ...RoleName[]], { message: `must be one of ${ROLE_NAMES.join(', ')}` }),
            scope: armId,
          })
          .strict(),
      )
      .default([]),
    targets: z
      .record(
        z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'target names are letters, digits, . _ - (max 64)'),
        z
          .object({
            id: armId,
            os: z.enum(['windows', 'linux'], { message: 'must be windows or linux' }),
            address: z.string().optional(),
            user: z.string().optional(),
            enforce: z.boolean().optional(),
            firewall: z
              .object({
                firewall: armId.optional(),
                policy: armId.optional(),
                ruleCollectionGroup: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$/, 'must be a rule collection group name').optional(),
                publicIp: z.string().refine((v) => isIP(v) !== 0, { message: 'must be the firewall\'s public IP address' }),
                ports: z.string().regex(/^\d{1,5}-\d{1,5}$/, 'must be a port range like 50000-50999'),
                subnet: z.string().refine((v) => { try { parseSource(v); return true; } catch { return false; } }, { message: 'must be the AzureFirewallSubnet prefix, e.g. 10.0.1.0/26' }),
              })
              .strict()
              .refine((f) => Boolean(f.firewall) !== Boolean(f.policy), { message: 'needs either firewall (classic rules) or policy (Firewall Policy), not both' })
              .refine((f) => !f.policy || f.ruleCollectionGroup, { message: 'a Firewall Policy needs ruleCollectionGroup' })
              .refine((f) => { const [a, b] = f.ports.split('-').map(Number); return a! >= 1 && b! <= 65535 && a! <= b!; }, { message: 'ports must be a range within 1-65535' })
              .optional(),
          })
          .strict(),
      )
      .default({}),
    policies: z
      .record(
        z.string(),
        z
          .object({
            scope: armId,
            ports: z.array(portRule).optional(),
            approval: approval.optional(),
            channels: byPlatform(channelPair).optional(),
            justification: justificationRule.optional(),
            autoApprove: z.array(autoApproveRule).optional(),
            reminder: reminderRule.optional(),
            routing: z.array(routingRule).optional(),
            timeZone: timeZone.optional(),
          })
          .strict(),
      )
      .default({}),
  })
  .strict();
