// `audit [vm] [since 7d]`: the activity a caller may read, as rows with the columns of Azure's
// activity-log export, and as CSV that opens cleanly in a spreadsheet. RBAC as in chat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvField, toCsv, type AuditRow } from '../../src/core/audit-export.js';
import type { Reply } from '../../src/core/reply.js';
import { localHeaders, requestOf, startHarness, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
const run = (as: string, text: string): Promise<Reply> => h.app.service.execute(p(as), text, { via: 'test' });
const rowsOf = (r: Reply): AuditRow[] => {
  if (r.kind !== 'audit') throw new Error(`expected an audit reply, got ${r.kind}: ${JSON.stringify(r)}`);
  return r.rows;
};
// Commas and quotes (line breaks are refused in a justification since issue 17: see test/security/inputs.test.ts).
const TRICKY = 'INC-1, "urgent", second part';
let aliceId = '';
let daveId = '';

beforeAll(async () => {
  h = await startHarness();
  aliceId = requestOf(await run('alice@contoso.com', `rdp vm1 1h from 203.0.113.90 reason "${TRICKY.replace(/"/g, "'")}"`)).id;
  await run('bob@contoso.com', `approve ${aliceId}`);
  daveId = requestOf(await run('dave@contoso.com', 'ssh dev1 30m from 203.0.113.91')).id;
});
afterAll(async () => {
  await h?.close();
});

describe('audit command', () => {
  it('a JIT Admin sees every event, in order, with the export columns filled in', async () => {
    const rows = rowsOf(await run('dave@contoso.com', 'audit'));
    const alice = rows.filter((r) => r.requestId === aliceId);
    expect(alice.map((r) => r.operation)).toEqual(expect.arrayContaining(['request.created', 'request.approved', 'grant.activated', 'rule.applied']));
    expect(alice[0]).toMatchObject({ operation: 'request.created', status: 'Started', caller: 'alice@contoso.com', target: 'vm1', ports: '3389/tcp', source: '203.0.113.90/32', duration: '1h' });
    expect(alice[0]!.resource).toMatch(/\/virtualMachines\/vm1$/);
    expect(alice.find((r) => r.operation === 'grant.activated')!.approvers).toBe('bob@contoso.com');
    expect(rows.some((r) => r.requestId === daveId)).toBe(true);
    const times = rows.map((r) => r.time);
    expect([...times].sort()).toEqual(times);
  });

  it('a Reader sees the activity but cannot request', async () => {
    expect(rowsOf(await run('erin@contoso.com', 'audit vm1')).some((r) => r.requestId === aliceId)).toBe(true);
    const req = await run('erin@contoso.com', 'rdp vm1 1h from 203.0.113.92');
    expect(req.kind).toBe('rejected');
  });

  it('a Requester sees their own requests, not another\'s outside their scope; a stranger sees nothing', async () => {
    const alice = rowsOf(await run('alice@contoso.com', 'audit'));
    expect(alice.some((r) => r.requestId === aliceId)).toBe(true);
    expect(alice.some((r) => r.requestId === daveId)).toBe(false);
    expect(rowsOf(await run('alice@contoso.com', 'audit dev1')).filter((r) => r.requestId === daveId)).toEqual([]);
    expect(rowsOf(await run('mallory@contoso.com', 'audit'))).toEqual([]);
  });

  it('filters by VM and by time; bad input gets a clear reply', async () => {
    expect(rowsOf(await run('dave@contoso.com', 'audit dev1')).every((r) => r.target === 'dev1')).toBe(true);
    expect(rowsOf(await run('dave@contoso.com', 'audit vm1 since 1s')).length).toBeLessThanOrEqual(rowsOf(await run('dave@contoso.com', 'audit vm1 since 7d')).length);
    const unknown = await run('dave@contoso.com', 'audit vm99');
    expect(unknown).toMatchObject({ kind: 'rejected', code: 'unknown_target' });
    const bad = await run('dave@contoso.com', 'audit vm1 since soon');
    expect(bad.kind).toBe('rejected');
    const text = await h.cmd('dave@contoso.com', 'audit vm1');
    expect(text.text).toMatch(/^Audit of vm1 since /);
    expect(text.text).toContain(aliceId);
  });
});

describe('CSV export', () => {
  it('opens in a spreadsheet: header, one record per event, commas and quotes in a justification quoted', async () => {
    const rows = rowsOf(await run('dave@contoso.com', 'audit vm1'));
    const csv = toCsv(rows);
    const [header] = csv.split('\r\n');
    expect(header).toBe('Time,Operation,Status,Caller,Resource,Request ID,Target,Ports,Source,Duration,Approvers,Justification');
    const created = rows.find((r) => r.requestId === aliceId && r.operation === 'request.created')!;
    expect(created.justification).toContain(',');
    // A line break (only in events stored before justifications refused them) is quoted too.
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csv).toContain(`"${created.justification.replace(/"/g, '""')}"`);
    // A minimal RFC 4180 reader gets the same records back.
    const records = parseCsv(csv);
    expect(records).toHaveLength(rows.length + 1);
    expect(records[rows.indexOf(created) + 1]![11]).toBe(created.justification);
  });

  it('downloads as a file (local channel): same rows, the caller\'s RBAC applied', async () => {
    const res = await fetch(`${h.app.url}/api/local/audit.csv?as=dave@contoso.com&target=vm1&since=7d`, { headers: localHeaders(h.app) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="jit-audit-vm1.csv"');
    const records = parseCsv(await res.text());
    expect(records.length).toBe(rowsOf(await run('dave@contoso.com', 'audit vm1')).length + 1);
    const mallory = parseCsv(await (await fetch(`${h.app.url}/api/local/audit.csv?as=mallory@contoso.com`, { headers: localHeaders(h.app) })).text());
    expect(mallory).toHaveLength(1); // the header only
    expect((await fetch(`${h.app.url}/api/local/audit.csv?as=dave@contoso.com&since=soon`, { headers: localHeaders(h.app) })).status).toBe(400);
  });

  it('a field a spreadsheet would run as a formula is neutralised', () => {
    expect(csvField('=HYPERLINK("http://evil")')).toBe('"\'=HYPERLINK(""http://evil"")"');
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('plain')).toBe('plain');
  });
});

function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') (row.push(field), out.push(row), (row = []), (field = '')), i++;
    else field += c;
  }
  return out;
}
