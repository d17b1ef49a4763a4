// The REST API's bodies and answers as zod schemas: api.ts validates every request body with the
// input schemas, and openapi.ts generates the document's components from all of them (zod's JSON
// Schema output), so the document and the server cannot drift. The answer schemas are checked
// against live answers in test/integration/api.test.ts. Branded ids (src/core/ids.ts) are plain
// strings on the wire, so the schemas are checked against the Unbranded form of the types.
import { z } from 'zod';
import { REQUEST_ID_RE, type Unbranded } from '../../core/ids.js';
import { MAX_INPUT_LENGTH, MAX_PORTS_PER_REQUEST, MAX_REASON_LENGTH } from '../../core/parse.js';
import type { AuditRow } from '../../core/audit-export.js';
import type { PolicyLine } from '../../core/policy.js';
import type { Connection, InventoryRow, Reply } from '../../core/reply.js';
import type { AccessRequest, RequestStatus } from '../../core/types.js';

/** Any other string field of a body. */
const MAX_FIELD = 1000;

export const STATUSES = ['awaiting_source', 'pending', 'approved', 'active', 'denied', 'timed_out', 'cancelled', 'expired', 'revoked', 'failed'] as const satisfies readonly RequestStatus[];
export const CARD_VERBS = ['approve', 'deny', 'ext_approve', 'ext_deny', 'revoke', 'extend', 'refresh'] as const;

// ------------------------------------------------------------------ request bodies (validated)

export const CommandBody = z
  .object({
    text: z.string().min(1).max(MAX_INPUT_LENGTH).meta({ description: 'A command in the chat grammar', examples: ['rdp vm1 2h from 203.0.113.7 reason "INC-1"', 'list pending'] }),
    prefix: z.string().max(100).optional().meta({ description: 'How examples in the answer start (default "jit")' }),
  })
  .strict();

export const NewRequestBody = z
  .object({
    target: z.string().min(1).max(MAX_FIELD).meta({ examples: ['vm1'] }),
    kind: z.enum(['rdp', 'ssh', 'winrm', 'port']).default('port'),
    ports: z
      .array(z.union([z.number().int().min(1).max(65535), z.string().max(40)]))
      .min(1)
      .max(MAX_PORTS_PER_REQUEST)
      .optional()
      .meta({ description: 'Required with kind "port": numbers or "8443/tcp", "5000/udp", "53/any"', examples: [[3389], ['8443/tcp']] }),
    duration: z.string().min(1).max(40).meta({ examples: ['2h', '90m', 'PT2H'] }),
    source: z.string().max(100).optional().meta({ description: 'An address or CIDR, or "*" where the policy allows Any; omitted: a one-time link records it', examples: ['203.0.113.7', '203.0.113.0/28'] }),
    justification: z.string().max(MAX_REASON_LENGTH).optional(),
    startAt: z.string().max(60).optional().meta({ description: 'Open later: HH:MM in the requester\'s time zone, or an ISO date-time', examples: ['14:00', '2026-12-01T09:00+01:00'] }),
  })
  .strict();

export const DenyBody = z.object({ reason: z.string().max(MAX_REASON_LENGTH).optional().meta({ description: 'Shown to the requester' }) }).strict();

export const ExtendBody = z.object({ duration: z.string().min(1).max(40).meta({ examples: ['30m', 'PT1H'] }) }).strict();

export const CardActionBody = z
  .object({
    verb: z.enum(CARD_VERBS),
    data: z
      .looseObject({
        requestId: z.string().max(40).optional(),
        scope: z.enum(['request', 'extension']).optional(),
        reason: z.string().max(MAX_REASON_LENGTH).optional().meta({ description: 'The card\'s reason input (deny)' }),
        addMs: z.union([z.number().int(), z.string().max(20)]).optional().meta({ description: 'For extend: milliseconds to add' }),
      })
      .default({})
      .meta({ description: 'The Action.Execute data with the card\'s input values merged in (other keys are ignored)' }),
  })
  .strict();

// ------------------------------------------------------------------ answers (documented, tested)

const int = z.number().int();
const Protocol = z.enum(['tcp', 'udp', '*']);
const PortSpec = z.object({ port: int.min(1).max(65535), protocol: Protocol });
const Decision = z.object({ by: z.string(), decision: z.enum(['approve', 'deny']), at: int, reason: z.string().optional() });
const AppliedRule = z.object({
  name: z.string(),
  scope: z.string(),
  priority: int,
  direction: z.literal('Inbound'),
  access: z.enum(['Allow', 'Deny']),
  protocol: Protocol,
  sourcePrefix: z.string(),
  destinationPort: int,
  description: z.string(),
  requestId: z.string(),
  expiresAt: int,
  nat: z.object({ publicAddress: z.string(), publicPort: int, translatedPort: int }).optional(),
});

export const RequestSchema = z
  .object({
    id: z.string().regex(REQUEST_ID_RE),
    requester: z.string(),
    target: z.string(),
    targetId: z.string(),
    ports: z.array(PortSpec),
    source: z.string().nullable().meta({ description: 'Normalised CIDR, or "*" for Any; null while the request waits for its source address (awaiting_source)' }),
    durationMs: int,
    justification: z.string().optional(),
    status: z.enum(STATUSES),
    statusReason: z.string().optional(),
    decisions: z.array(Decision),
    createdAt: int,
    updatedAt: int,
    approvalExpiresAt: int,
    startAt: int.optional(),
    activatedAt: int.optional(),
    expiresAt: int.optional(),
    rules: z.array(AppliedRule),
    origin: z.object({
      via: z.string().meta({ description: 'How the request came in: api, cli, console, or the chat platform\'s name' }),
      channel: z.string().optional().meta({ deprecated: true, description: 'The same as via (its name before 2026-12-03); answers carry it for older clients' }),
      replyTo: z.string().optional(),
      timeZone: z.string().optional(),
    }),
    pendingExtension: z.object({ addMs: int, by: z.string(), at: int, decisions: z.array(Decision) }).optional(),
    escalatedAt: int.optional(),
    version: int,
  })
  .meta({ description: 'An access request; times are milliseconds since the epoch' }) satisfies z.ZodType<Unbranded<AccessRequest>>;

const ConnectionSchema = z.object({ host: z.string(), port: int, command: z.string() }) satisfies z.ZodType<Connection>;
const InventoryRowSchema = z.object({
  name: z.string(), id: z.string(), ports: z.string(), approved7d: int, lastAccessAt: int.optional(), lastUser: z.string().optional(), address: z.string(),
}) satisfies z.ZodType<InventoryRow>;
const PolicyLineSchema = z.object({ key: z.string(), value: z.string(), from: z.string() }) satisfies z.ZodType<PolicyLine>;
export const AuditRowSchema = z.object({
  time: z.string(), operation: z.string(), status: z.enum(['Started', 'Succeeded', 'Failed']), caller: z.string(), resource: z.string(), requestId: z.string(),
  target: z.string(), ports: z.string(), source: z.string(), duration: z.string(), approvers: z.string(), justification: z.string(),
}) satisfies z.ZodType<AuditRow>;

const withRequest = <K extends string>(kind: K) => z.object({ kind: z.literal(kind), request: RequestSchema });
export const ReplySchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('rejected'), code: z.string(), message: z.string(), example: z.string().optional() }),
    withRequest('awaiting_source').extend({ link: z.string(), linkExpiresAt: int }),
    withRequest('pending_approval').extend({ approvers: z.array(z.string()) }),
    withRequest('active').extend({ connections: z.array(ConnectionSchema) }),
    withRequest('failed'),
    withRequest('decided').extend({ decision: z.enum(['approve', 'deny']), approvals: int, quorum: int }),
    withRequest('closed'),
    withRequest('extended'),
    withRequest('extension_pending').extend({ approvers: z.array(z.string()) }),
    withRequest('status').extend({ connections: z.array(ConnectionSchema) }),
    z.object({ kind: z.literal('list'), scope: z.string(), requests: z.array(RequestSchema) }),
    z.object({ kind: z.literal('info'), message: z.string() }),
    z.object({
      kind: z.literal('inventory'),
      configured: z.array(InventoryRowSchema),
      notConfigured: z.array(z.object({ name: z.string(), id: z.string() })),
      unsupported: z.array(z.object({ name: z.string(), id: z.string(), reason: z.string() })),
    }),
    z.object({ kind: z.literal('policy'), target: z.string(), targetId: z.string(), os: z.string(), lines: z.array(PolicyLineSchema) }),
    z.object({ kind: z.literal('audit'), target: z.string().optional(), since: int, rows: z.array(AuditRowSchema), truncated: z.boolean() }),
    z.object({ kind: z.literal('help'), examples: z.array(z.string()) }),
  ])
  .meta({ description: 'What chat would say, structured; `kind` tells which' }) satisfies z.ZodType<Unbranded<Reply>>;

export const ErrorSchema = z
  .object({ error: z.string(), code: z.string().optional().meta({ description: 'For policy refusals: the refusal code' }), example: z.string().optional().meta({ description: 'A command that would be accepted' }) })
  .meta({ description: 'Refused; `error` says why' });

/** An Adaptive Card (1.5), as Teams and the web console render it. */
const CardSchema = z.looseObject({ type: z.literal('AdaptiveCard'), version: z.string() }).meta({ description: 'An Adaptive Card 1.5 (http://adaptivecards.io/schemas/adaptive-card.json)' });

export const CommandAnswer = z.object({
  reply: ReplySchema,
  text: z.string().meta({ description: 'The reply as plain text' }),
  card: CardSchema.optional().meta({ description: 'With Accept: application/vnd.microsoft.card.adaptive+json' }),
});
export const CommandRefusal = ErrorSchema.extend({ reply: ReplySchema, text: z.string(), card: CardSchema.optional() });
/** A refused command carries its reply; a body that is not a command gets the plain error. */
export const CommandError = z.union([CommandRefusal, ErrorSchema]);
export const CardActionAnswer = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('card'), card: CardSchema }).meta({ description: 'The refreshed card' }),
  z.object({ kind: z.literal('message'), text: z.string() }).meta({ description: 'Refused or done without a card; the card is unchanged' }),
]);
export const RequestList = z.object({ requests: z.array(RequestSchema) });
export const AuditAnswer = z.object({ rows: z.array(AuditRowSchema), truncated: z.boolean() });

/** Component names in the document: inputs are generated as accepted, answers as sent. */
export const INPUTS = { CommandBody, NewRequest: NewRequestBody, DenyBody, ExtendBody, CardActionBody } as const;
/** A card action refused as GET /requests/{id} would be (404: not visible or no such request; 429): the card host's message and the plain error. */
export const CardActionRefusal = ErrorSchema.extend({ kind: z.literal('message'), text: z.string() });
export const OUTPUTS = { Error: ErrorSchema, Request: RequestSchema, Reply: ReplySchema, CommandAnswer, CommandRefusal, CommandError, CardActionAnswer, CardActionRefusal, RequestList, AuditAnswer } as const;

/** A body checked against its schema, or a 400 saying what is wrong, by field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): { ok: true; value: z.output<S> } | { ok: false; error: string } {
  const r = schema.safeParse(body, { reportInput: true });
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, error: r.error.issues.slice(0, 3).map(explain).join('; ') };
}

function explain(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.');
  const name = key ? `"${key}"` : 'the body';
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `${name} is required`;
      return `${name} must be ${issue.expected === 'object' ? 'a JSON object' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}`;
    case 'too_big': {
      // The same words as chat's validator (src/core/validate.ts) for the fields both accept.
      const last = String(issue.path.at(-1) ?? '');
      const input = (issue as { input?: unknown }).input;
      if ((last === 'justification' || last === 'reason') && typeof input === 'string') return `the ${last} is ${input.length} characters; at most ${String(issue.maximum)}`;
      if (last === 'ports' && Array.isArray(input)) return `at most ${String(issue.maximum)} ports per request (got ${input.length})`;
      return `${name} is too long (at most ${String(issue.maximum)} ${issue.origin === 'array' ? 'items' : 'characters'})`;
    }
    case 'too_small':
      return issue.origin === 'array' ? `${name} must list at least ${String(issue.minimum)}` : `${name} must not be empty`;
    case 'invalid_value':
      return `${name} must be one of ${issue.values.map(String).join(', ')}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${k}"`).join(', ')}${key ? ` in ${name}` : ''}`;
    default:
      return `${name}: ${issue.message}`;
  }
}
