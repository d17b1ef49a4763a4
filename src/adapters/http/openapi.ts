// The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json. The paths are listed
// here; every body and answer schema is generated from the zod schemas in schemas.ts, the ones
// api.ts validates bodies with (request bodies as accepted, answers as sent), so they cannot drift.
import { z } from 'zod';
import { REQUEST_ID_PATTERN } from '../../core/ids.js';
import { INPUTS, OUTPUTS, STATUSES } from './schemas.js';

const ref = (name: keyof typeof INPUTS | keyof typeof OUTPUTS) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: keyof typeof INPUTS | keyof typeof OUTPUTS) => ({ 'application/json': { schema: ref(name) } });
const error = (description: string) => ({ description, content: json('Error') });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: REQUEST_ID_PATTERN } };
const reply = (description: string, status = '200') => ({ [status]: { description, content: json('Reply') } });
const body = (name: keyof typeof INPUTS, required = true) => ({ required, content: json(name) });
const E400 = error('The body or a parameter is invalid (the message names the field), or the policy refuses the request (`code`, `example`)');
const E401 = error('No valid bearer token (or X-Jit-Act-As off the local channel); answered with WWW-Authenticate: Bearer');
const E413 = error('The body is larger than the server accepts (64 KiB)');
const refusals = {
  '400': E400,
  '401': E401,
  '403': error('Not allowed to the caller (RBAC), or a self-approval'),
  '404': error('No such request or VM (or not visible to the caller)'),
  '409': error('Already decided, or the request is not in a state that allows this'),
  '410': error('The one-time source link expired'),
  '429': error('A rate or active-grant limit; the message says when to retry'),
};
const posted = { ...refusals, '413': E413 };

/** The schemas, generated: each component once, with $refs between them, no $schema / $id of their own. */
function components(): Record<string, unknown> {
  const generate = (schemas: Record<string, z.ZodType>, io: 'input' | 'output') => {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
    const out = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}`, unrepresentable: 'any' }).schemas;
    return Object.fromEntries(Object.entries(out).map(([id, s]) => {
      const { $schema: _s, $id: _i, ...rest } = s as Record<string, unknown>;
      return [id, rest];
    }));
  };
  return { ...generate(OUTPUTS, 'output'), ...generate(INPUTS, 'input') };
}

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'jit-bot API',
      version: '1',
      description:
        'Just-in-time VM access: the same requests, approvals and RBAC as in chat. Authenticate with `Authorization: Bearer <token>`; each token is bound to one principal of the policy file (JIT_API_TOKENS holds only its SHA-256).',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }, { localActAs: [], localToken: [] }],
    paths: {
      '/commands': {
        post: {
          operationId: 'runCommand',
          summary: 'Run a command in the chat grammar as the caller (`rdp vm1 2h from 203.0.113.7`, `list`, `approve <id>`, `audit vm1`…)',
          requestBody: body('CommandBody'),
          responses: {
            '200': {
              description: 'The reply, structured and as text; with `Accept: application/vnd.microsoft.card.adaptive+json` also as the Adaptive Card (`card`) Teams and the web console show',
              content: json('CommandAnswer'),
            },
            ...Object.fromEntries(Object.entries(refusals).map(([status, e]) => [status, { description: `${e.description}; a refused command includes its reply (\`reply\`, \`text\`)`, content: json('CommandError') }])),
            '401': E401,
            '413': E413,
          },
        },
      },
      '/card-actions': {
        post: {
          operationId: 'runCardAction',
          summary: 'An Adaptive Card Action.Execute from a card host (the web console): approve / deny / revoke / extend / refresh by verb',
          requestBody: body('CardActionBody'),
          responses: {
            '200': { description: '`{kind: "card", card}` (the refreshed card) or `{kind: "message", text}` (refused, or done without a card; nothing else changed)', content: json('CardActionAnswer') },
            '400': error('The body is not a card action (unknown verb, a field of the wrong type or too long)'),
            '401': E401,
            '404': { description: 'No such request that the caller may see (as GET /requests/{id}); nothing changed', content: json('CardActionRefusal') },
            '413': E413,
            '429': { description: 'A read rate limit; the message says when to retry', content: json('CardActionRefusal') },
          },
        },
      },
      '/requests': {
        post: {
          operationId: 'createRequest',
          summary: 'Request access (like `rdp vm1 2h from 203.0.113.7 reason "INC-1"` in chat)',
          requestBody: body('NewRequest'),
          responses: { ...reply('Accepted: waiting for approval, waiting for the source address, or open', '201'), ...posted },
        },
        get: {
          operationId: 'listRequests',
          summary: 'List the requests the caller may see, newest first',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...STATUSES] } },
            { name: 'target', in: 'query', schema: { type: 'string' } },
            { name: 'requester', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          ],
          responses: { '200': { description: 'Requests', content: json('RequestList') }, '400': E400, '401': E401 },
        },
      },
      '/requests/{id}': {
        get: { operationId: 'getRequest', summary: 'One request (with connection details when active)', parameters: [idParam], responses: { ...reply('The request'), '401': E401, '403': refusals['403'], '404': refusals['404'] } },
      },
      '/requests/{id}/approve': { post: { operationId: 'approveRequest', summary: 'Approve (approvers only; never one\'s own); no body', parameters: [idParam], responses: { ...reply('Decision recorded'), ...posted } } },
      '/requests/{id}/deny': {
        post: { operationId: 'denyRequest', summary: 'Deny, with an optional reason', parameters: [idParam], requestBody: body('DenyBody', false), responses: { ...reply('Decision recorded'), ...posted } },
      },
      '/requests/{id}/revoke': { post: { operationId: 'revokeRequest', summary: 'Close a grant early, or withdraw a pending request; no body', parameters: [idParam], responses: { ...reply('Closed'), ...posted } } },
      '/requests/{id}/extend': {
        post: { operationId: 'extendRequest', summary: 'Move the expiry later (within the policy\'s maximum; may need approval)', parameters: [idParam], requestBody: body('ExtendBody'), responses: { ...reply('Extended, or waiting for approval'), ...posted } },
      },
      '/targets': { get: { operationId: 'listTargets', summary: 'VMs as the JIT blade groups them: configured, not configured, unsupported', responses: { ...reply('Inventory (`kind: "inventory"`)'), '401': E401 } } },
      '/audit': {
        get: {
          operationId: 'getAudit',
          summary: 'Audit events the caller may read, in the columns of Azure\'s activity-log export',
          parameters: [
            { name: 'target', in: 'query', schema: { type: 'string' } },
            { name: 'since', in: 'query', schema: { type: 'string', default: '7d' }, description: 'How far back (7d, 24h, PT1H)' },
          ],
          responses: { '200': { description: 'Rows, oldest first', content: json('AuditAnswer') }, '400': E400, '401': E401, '404': refusals['404'] },
        },
      },
      '/audit.csv': {
        get: {
          operationId: 'getAuditCsv',
          summary: 'The same rows as CSV (RFC 4180; formula-like cells neutralised)',
          parameters: [{ name: 'target', in: 'query', schema: { type: 'string' } }, { name: 'since', in: 'query', schema: { type: 'string', default: '7d' } }],
          responses: { '200': { description: 'CSV with a header row', content: { 'text/csv': { schema: { type: 'string' } } } }, '400': E400, '401': E401, '404': refusals['404'] },
        },
      },
      '/openapi.json': { get: { operationId: 'getOpenApi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token made by `npm run api-token -- <principal>`' },
        localActAs: { type: 'apiKey', in: 'header', name: 'X-Jit-Act-As', description: 'Local channel only (JIT_LOCAL_CHANNEL): the principal to act as, with the local secret (X-Jit-Local-Token, or the console\'s login cookie). What the CLI and console use.' },
        localToken: { type: 'apiKey', in: 'header', name: 'X-Jit-Local-Token', description: 'Local channel only: the secret of this run, from <JIT_DATA_DIR>/local-token (readable by the user who started jit-bot only). Requests through a proxy, with a non-loopback Host, or cross-site are refused.' },
      },
      schemas: components(),
    },
  };
}
