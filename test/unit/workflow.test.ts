import { describe, expect, it } from 'vitest';
import { PolicyFileError, parsePolicyText } from '../../src/config/policy-file.js';
import { effectivePolicy } from '../../src/core/policy.js';
import { refMatches } from '../../src/core/rbac.js';
import { checkJustification, extendOptions, inWindow, localTime, matchAutoApproval, resolveStart, routeApproval, routeOn, type AutoApproveRule } from '../../src/core/workflow.js';
import { p, tn } from '../fixtures/ids.js';
import type { PrincipalId, PrincipalRef } from '../../src/core/ids.js';

const H = 3_600_000;
const M = 60_000;

const YAML = `
groups:
  sre: [sam@contoso.com]
targets:
  vm1: { id: /subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1, os: windows }
  vm2: { id: /subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm2, os: linux }
policies:
  sub:
    scope: /subscriptions/s
    justification: { required: true, pattern: "^(INC|CHG)-\\\\d+", hint: "a ticket id like INC-4711" }
    reminder: { before: 15m }
    autoApprove:
      - name: sre-office-hours
        principals: [group:sre]
        ports: [22]
        maxDuration: 1h
        windows: [{ days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", timeZone: Europe/Berlin }]
    approval: { denyQuorum: 2, escalation: { after: 30m, approvers: [sec@contoso.com] } }
  vm2:
    scope: /subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm2
    justification: { required: false }
    autoApprove: []
    reminder: { extendOptions: [15m] }
`;

describe('workflow policy: parsing and inheritance', () => {
  const book = parsePolicyText(YAML, 'wf.yaml');

  it('a VM inherits justification, reminder and auto-approval from the subscription, and says where from', () => {
    const p = effectivePolicy(book, book.targets.vm1!);
    expect(p.justification).toEqual({ required: true, pattern: '^(INC|CHG)-\\d+', hint: 'a ticket id like INC-4711' });
    expect(p.reminder).toEqual({ beforeMs: 15 * M, extendOptionsMs: [30 * M, H] });
    expect(p.autoApprove.map((r) => r.name)).toEqual(['sre-office-hours']);
    expect(p.approval.denyQuorum).toBe(2);
    expect(p.approval.escalation).toEqual({ afterMs: 30 * M, approvers: ['sec@contoso.com'] });
    expect(p.origin['justification.required']).toBe('sub');
  });

  it('a deeper scope overrides field by field, and replaces the auto-approval list', () => {
    const p = effectivePolicy(book, book.targets.vm2!);
    expect(p.justification).toEqual({ required: false, pattern: '^(INC|CHG)-\\d+', hint: 'a ticket id like INC-4711' });
    expect(p.autoApprove).toEqual([]);
    expect(p.reminder).toEqual({ beforeMs: 15 * M, extendOptionsMs: [15 * M] });
    expect(p.origin.autoApprove).toBe('vm2');
  });

  it.each([
    ['policies.sub.autoApprove[0].windows[0].from', 'from: "08:00"', 'from: "8am"', /must be HH:MM/],
    ['policies.sub.autoApprove[0].windows[0].timeZone', 'timeZone: Europe/Berlin', 'timeZone: Mars/Olympus', /IANA time zone/],
    ['policies.sub.autoApprove[0].windows[0].days[0]', 'days: [mon,', 'days: [monday,', /must be one of mon, tue/],
    ['policies.sub.justification.pattern', 'pattern: "^(INC|CHG)-\\\\d+"', 'pattern: "(("', /valid regular expression/],
    ['policies.sub.approval.denyQuorum', 'denyQuorum: 2', 'denyQuorum: 0', /at least 1/],
  ])('%s: a bad value is named by its key path', (path, good, replacement, message) => {
    expect(YAML).toContain(good);
    const bad = YAML.replace(good, replacement);
    let err: unknown;
    try {
      parsePolicyText(bad, 'wf.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyFileError);
    const problem = (err as PolicyFileError).problems.find((p) => p.startsWith(path));
    expect(problem, (err as PolicyFileError).problems.join('\n')).toMatch(message);
  });
});

describe('justification rules', () => {
  const rule = { required: true, pattern: '^(INC|CHG)-\\d+', hint: 'a ticket id like INC-4711' };
  it('a missing or non-matching reason is refused with the hint and an example that fits', () => {
    expect(() => checkJustification(rule, undefined, 'rdp vm1 1h')).toThrow('this target needs a reason (a ticket id like INC-4711)');
    expect(() => checkJustification(rule, 'because', 'rdp vm1 1h')).toThrow('the reason "because" does not match what this target needs (a ticket id like INC-4711)');
    try {
      checkJustification(rule, 'because', 'rdp vm1 1h');
    } catch (e) {
      expect((e as { example: string }).example).toBe('rdp vm1 1h reason "INC-4711 disk full"');
    }
    expect(() => checkJustification(rule, 'CHG-12 patching', 'rdp vm1 1h')).not.toThrow();
    expect(() => checkJustification({ required: false }, undefined, 'x')).not.toThrow();
  });
});

describe('time windows and auto-approval rules', () => {
  // 2026-11-23 is a Monday.
  const mon0900Berlin = Date.parse('2026-11-23T08:00:00Z'); // 09:00 CET
  const mon1830Berlin = Date.parse('2026-11-23T17:30:00Z'); // 18:30 CET
  const sat1000Berlin = Date.parse('2026-11-28T09:00:00Z');
  const w = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, from: '08:00', to: '18:00', timeZone: 'Europe/Berlin' };

  it('local time is computed in the window\'s time zone', () => {
    expect(localTime(mon0900Berlin, 'Europe/Berlin')).toEqual({ day: 'mon', minutes: 9 * 60 });
    expect(localTime(mon0900Berlin, 'America/New_York')).toEqual({ day: 'mon', minutes: 3 * 60 });
    expect(inWindow({ ...w, days: [...w.days] }, mon0900Berlin)).toBe(true);
    expect(inWindow({ ...w, days: [...w.days] }, mon1830Berlin)).toBe(false);
    expect(inWindow({ ...w, days: [...w.days] }, sat1000Berlin)).toBe(false);
  });

  const rules: AutoApproveRule[] = [
    { name: 'sre-hours', principals: ['group:sre'], ports: [{ port: 22, protocol: 'tcp' }], maxDurationMs: H, windows: [{ ...w, days: [...w.days] }], onCallSchedules: [] },
    { name: 'oncall-any', principals: [], ports: [], windows: [], onCallSchedules: ['PSCHED1'] },
  ];
  const book = parsePolicyText(YAML, 'wf.yaml');
  const member = (ref: PrincipalRef, who: PrincipalId) => refMatches(book, ref, who);
  const ask = (over: Partial<{ requester: PrincipalId; ports: { port: number; protocol: 'tcp' }[]; durationMs: number; at: number }>) => ({
    requester: p('sam@contoso.com'), ports: [{ port: 22, protocol: 'tcp' as const }], durationMs: H, at: mon0900Berlin, ...over,
  });

  it.each([
    ['all conditions hold', ask({}), ['sre-hours', 'oncall-any']],
    ['not in the group', ask({ requester: p('eve@contoso.com') }), ['oncall-any']],
    ['a port the rule does not cover', ask({ ports: [{ port: 3389, protocol: 'tcp' }] }), ['oncall-any']],
    ['longer than the rule allows', ask({ durationMs: 2 * H }), ['oncall-any']],
    ['outside the time window', ask({ at: mon1830Berlin }), ['oncall-any']],
    ['on a Saturday', ask({ at: sat1000Berlin }), ['oncall-any']],
  ])('%s', (_what, a, names) => {
    expect(matchAutoApproval(rules, a, member).map((r) => r.name)).toEqual(names);
  });
});

describe('extension options', () => {
  it('offers only extensions that keep the whole grant within the maximum', () => {
    const rule = { beforeMs: 10 * M, extendOptionsMs: [30 * M, H] };
    expect(extendOptions(rule, 0, 2 * H, 3 * H)).toEqual([30 * M, H]);
    expect(extendOptions(rule, 0, 2.5 * H, 3 * H)).toEqual([30 * M]);
    expect(extendOptions(rule, 0, 3 * H, 3 * H)).toEqual([]);
  });
});

describe('approval routing', () => {
  const ROUTED = `
targets:
  vm1: { id: /subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1, os: windows }
  db1: { id: /subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/db1, os: linux }
policies:
  sub:
    scope: /subscriptions/s
    channels: { slack: { approvals: C-DEFAULT } }
    routing:
      - name: databases
        when: { targets: [db1] }
        slack: { channel: C-DBA }
        teams: { channel: "19:dba@thread.tacv2", dm: true }
      - name: rdp-by-admins
        when: { ports: [3389], roles: [JIT Admin] }
        slack: { dm: true }
      - name: "*"
        slack: { channel: C-OPS }
`;
  const book = parsePolicyText(ROUTED, 'routed.yaml');
  const route = (target: string, port: number, roles: string[]) => {
    const p = effectivePolicy(book, book.targets[target]!);
    return routeApproval(p.routing, { target: tn(target), ports: [{ port, protocol: 'tcp' }], requesterRoles: roles }, p.channels);
  };

  it.each([
    ['by target', 'db1', 22, ['JIT Requester'], { matched: 'databases', platforms: { slack: { channel: 'C-DBA', dm: false }, teams: { channel: '19:dba@thread.tacv2', dm: true } } }],
    ['by port and the requester\'s role', 'vm1', 3389, ['JIT Admin'], { matched: 'rdp-by-admins', platforms: { slack: { dm: true } } }],
    ['the same port by another role falls back', 'vm1', 3389, ['JIT Requester'], { matched: '*', platforms: { slack: { channel: 'C-OPS', dm: false } } }],
    ['anything else falls back to *', 'vm1', 22, [], { matched: '*', platforms: { slack: { channel: 'C-OPS', dm: false } } }],
  ])('%s', (_what, target, port, roles, expected) => {
    expect(route(target, port, roles)).toEqual(expected);
  });

  it('without routing: the approval channel where one is set, else DMs to approvers', () => {
    const route = routeApproval([], { target: tn('x'), ports: [], requesterRoles: [] }, { slack: { approvals: 'C1' } });
    expect(route).toEqual({ matched: 'default', platforms: { slack: { channel: 'C1', dm: false } }, others: { dm: true } });
    // A platform the policy names no channel for asks the approvers by DM.
    expect(['slack', 'teams'].map((p) => routeOn(route, p))).toEqual([{ channel: 'C1', dm: false }, { dm: true }]);
    // After a routing entry matched, a platform it does not name gets nothing.
    expect(routeOn(routeApproval([{ name: '*', targets: [], ports: [], roles: [], platforms: { teams: { dm: true } } }], { target: tn('x'), ports: [], requesterRoles: [] }, {}), 'slack')).toBeUndefined();
  });

  it('a routing entry without any destination is refused with its key path', () => {
    expect(() => parsePolicyText(ROUTED.replace('slack: { channel: C-OPS }', 'slack: { dm: false }'), 'r.yaml')).toThrow(/policies\.sub\.routing\[2\]\.slack: needs a channel, or dm: true/);
  });
});

describe('scheduled start times', () => {
  const now = Date.parse('2026-11-24T12:30:00Z'); // 13:30 in Berlin, 07:30 in New York
  it.each([
    ['14:00', 'Europe/Berlin', '2026-11-24T13:00:00.000Z'],
    ['13:00', 'Europe/Berlin', '2026-11-25T12:00:00.000Z'], // already past today: tomorrow
    ['14:00', 'America/New_York', '2026-11-24T19:00:00.000Z'],
    ['14:00', 'UTC', '2026-11-24T14:00:00.000Z'],
    ['2026-11-25T09:15', 'Europe/Berlin', '2026-11-25T08:15:00.000Z'],
    ['2026-11-25T09:15Z', 'Europe/Berlin', '2026-11-25T09:15:00.000Z'],
    ['2026-11-25T09:15+05:30', 'UTC', '2026-11-25T03:45:00.000Z'],
  ])('%s in %s → %s', (text, tz, iso) => {
    expect(new Date(resolveStart(text, now, tz, 'x')).toISOString()).toBe(iso);
  });
  it('crosses a daylight-saving change correctly', () => {
    // 2026-03-29: Berlin moves from UTC+1 to UTC+2 at 02:00.
    const sat = Date.parse('2026-03-28T20:00:00Z');
    expect(new Date(resolveStart('09:00', sat, 'Europe/Berlin', 'x')).toISOString()).toBe('2026-03-29T07:00:00.000Z');
  });
  it.each([['2026-11-24T10:00Z', /in the past/], ['2026-12-30T10:00Z', /more than 7 days ahead/]])('%s is refused', (text, msg) => {
    expect(() => resolveStart(text, now, 'UTC', 'ssh vm1 1h at 14:00')).toThrow(msg);
  });
});
