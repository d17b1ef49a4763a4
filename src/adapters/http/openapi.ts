// The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = { description: 'Refused; `error` says why (and `code`, `example` for policy refusals)', content: { 'application/json': { schema: ref('Error') } } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^r[0-9a-z]{9}$' } };
const reply = (description: string, status = '200') => ({ [status]: { description, content: { 'application/json': { schema: ref('Reply') } } } });
const refusals = { '400': error, '401': error, '403': error, '404': error, '409': error, '429': error };

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
          summary: 'Run a command in the chat grammar as the caller (`rdp vm1 2h from 203.0.113.7`, `list`, `approve <id>`, `audit vm1`…)',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['text'], properties: { text: { type: 'string' }, prefix: { type: 'string', description: 'How examples in the answer start (default "jit")' } } } } } },
          responses: {
            '200': {
              description: 'The reply, structured and as text; with `Accept: application/vnd.microsoft.card.adaptive+json` also as the Adaptive Card (`card`) Teams and the web console show',
              content: { 'application/json': { schema: { type: 'object', properties: { reply: ref('Reply'), text: { type: 'string' }, card: { type: 'object' } } } } },
            },
            ...refusals,
          },
        },
      },
      '/card-actions': {
        post: {
          summary: 'An Adaptive Card Action.Execute from a card host (the web console): approve / deny / revoke / extend / refresh by verb',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['verb', 'data'], properties: { verb: { type: 'string', enum: ['approve', 'deny', 'ext_approve', 'ext_deny', 'revoke', 'extend', 'refresh'] }, data: { type: 'object', properties: { requestId: { type: 'string' }, reason: { type: 'string' }, addMs: { type: 'integer' } } } } } } } },
          responses: { '200': { description: '`{kind: "card", card}` (the refreshed card) or `{kind: "message", text}` (refused; nothing changed)', content: { 'application/json': { schema: { type: 'object' } } } }, '401': error, '404': { description: 'No such request that the caller may see (as GET /requests/{id}); nothing changed', content: { 'application/json': { schema: { type: 'object' } } } }, '429': error },
        },
      },
      '/requests': {
        post: {
          summary: 'Request access (like `rdp vm1 2h from 203.0.113.7 reason "INC-1"` in chat)',
          requestBody: { required: true, content: { 'application/json': { schema: ref('NewRequest') } } },
          responses: { ...reply('Accepted: waiting for approval, waiting for the source address, or open', '201'), ...refusals },
        },
        get: {
          summary: 'List the requests the caller may see, newest first',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string', enum: ['awaiting_source', 'pending', 'approved', 'active', 'denied', 'timed_out', 'cancelled', 'expired', 'revoked', 'failed'] } },
            { name: 'target', in: 'query', schema: { type: 'string' } },
            { name: 'requester', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          ],
          responses: { '200': { description: 'Requests', content: { 'application/json': { schema: { type: 'object', properties: { requests: { type: 'array', items: ref('Request') } } } } } }, '400': error, '401': error },
        },
      },
      '/requests/{id}': { get: { summary: 'One request (with connection details when active)', parameters: [idParam], responses: { ...reply('The request'), '401': error, '404': error } } },
      '/requests/{id}/approve': { post: { summary: 'Approve (approvers only; never one\'s own)', parameters: [idParam], responses: { ...reply('Decision recorded'), ...refusals } } },
      '/requests/{id}/deny': {
        post: {
          summary: 'Deny, with a reason',
          parameters: [idParam],
          requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } } } } },
          responses: { ...reply('Decision recorded'), ...refusals },
        },
      },
      '/requests/{id}/revoke': { post: { summary: 'Close a grant early, or withdraw a pending request', parameters: [idParam], responses: { ...reply('Closed'), ...refusals } } },
      '/requests/{id}/extend': {
        post: {
          summary: 'Move the expiry later (within the policy\'s maximum; may need approval)',
          parameters: [idParam],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['duration'], properties: { duration: { type: 'string', examples: ['30m', 'PT1H'] } } } } } },
          responses: { ...reply('Extended, or waiting for approval'), ...refusals },
        },
      },
      '/targets': { get: { summary: 'VMs as the JIT blade groups them: configured, not configured, unsupported', responses: { ...reply('Inventory'), '401': error } } },
      '/audit': {
        get: {
          summary: 'Audit events the caller may read, in the columns of Azure\'s activity-log export',
          parameters: [
            { name: 'target', in: 'query', schema: { type: 'string' } },
            { name: 'since', in: 'query', schema: { type: 'string', default: '7d' }, description: 'How far back (7d, 24h, PT1H)' },
          ],
          responses: { '200': { description: 'Rows, oldest first', content: { 'application/json': { schema: { type: 'object', properties: { rows: { type: 'array', items: ref('AuditRow') }, truncated: { type: 'boolean' } } } } } }, '400': error, '401': error, '404': error },
        },
      },
      '/audit.csv': {
        get: {
          summary: 'The same rows as CSV (RFC 4180; formula-like cells neutralised)',
          parameters: [{ name: 'target', in: 'query', schema: { type: 'string' } }, { name: 'since', in: 'query', schema: { type: 'string', default: '7d' } }],
          responses: { '200': { description: 'CSV with a header row', content: { 'text/csv': { schema: { type: 'string' } } } }, '400': error, '401': error, '404': error },
        },
      },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token made by `npm run api-token -- <principal>`' },
        localActAs: { type: 'apiKey', in: 'header', name: 'X-Jit-Act-As', description: 'Local channel only (JIT_LOCAL_CHANNEL): the principal to act as, with the local secret (X-Jit-Local-Token, or the console\'s login cookie). What the CLI and console use.' },
        localToken: { type: 'apiKey', in: 'header', name: 'X-Jit-Local-Token', description: 'Local channel only: the secret of this run, from <JIT_DATA_DIR>/local-token (readable by the user who started jit-bot only). Requests through a proxy, with a non-loopback Host, or cross-site are refused.' },
      },
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string' }, example: { type: 'string' } } },
        NewRequest: {
          type: 'object',
          required: ['target', 'duration'],
          properties: {
            target: { type: 'string', examples: ['vm1'] },
            kind: { type: 'string', enum: ['rdp', 'ssh', 'winrm', 'port'], default: 'port' },
            ports: { type: 'array', items: { type: ['integer', 'string'] }, examples: [[3389], ['8443/tcp']], description: 'With kind "port"' },
            duration: { type: 'string', examples: ['2h', '90m', 'PT2H'] },
            source: { type: 'string', examples: ['203.0.113.7', '203.0.113.0/28'] },
            justification: { type: 'string', maxLength: 500 },
            startAt: { type: 'string', examples: ['14:00', '2026-12-01T09:00+01:00'] },
          },
        },
        Request: {
          type: 'object',
          required: ['id', 'status', 'requester', 'target', 'ports', 'durationMs'],
          properties: {
            id: { type: 'string' },
            status: { type: 'string' },
            requester: { type: 'string' },
            target: { type: 'string' },
            targetId: { type: 'string' },
            ports: { type: 'array', items: { type: 'object', properties: { port: { type: 'integer' }, protocol: { type: 'string' } } } },
            source: { type: 'string' },
            durationMs: { type: 'integer' },
            justification: { type: 'string' },
            createdAt: { type: 'integer' },
            activatedAt: { type: 'integer' },
            expiresAt: { type: 'integer' },
            decisions: { type: 'array', items: { type: 'object', properties: { by: { type: 'string' }, decision: { type: 'string' }, at: { type: 'integer' }, reason: { type: 'string' } } } },
          },
        },
        Reply: {
          type: 'object',
          required: ['kind'],
          description: 'What chat would say, structured: `kind` is pending_approval, awaiting_source, active, decided, closed, extended, extension_pending, status, inventory, …',
          properties: { kind: { type: 'string' }, request: ref('Request') },
        },
        AuditRow: {
          type: 'object',
          properties: Object.fromEntries(['time', 'operation', 'status', 'caller', 'resource', 'requestId', 'target', 'ports', 'source', 'duration', 'approvers', 'justification'].map((k) => [k, { type: 'string' }])),
        },
      },
    },
  };
}
