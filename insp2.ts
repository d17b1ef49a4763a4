import { Redis } from 'ioredis';
import { RedisAuditLog } from './src/adapters/redis/audit.js';
import { RedisRequestStore } from './src/adapters/redis/store.js';
const [prefix] = process.argv.slice(2);
const r = new Redis();
const store = new RedisRequestStore(r, prefix!);
const audit = new RedisAuditLog(r, prefix!);
const events = await audit.list({ since: 0, limit: 100000 });
const byReq = new Map<string, typeof events>();
for (const e of events) byReq.set(e.requestId, [...(byReq.get(e.requestId) ?? []), e]);
const worst: Array<[number, string]> = [];
for (const [id, evs] of byReq) {
  const req = await store.get(id);
  const closes = evs.filter((e) => e.action === 'rule.removed' || e.action === 'rule.reconciled');
  const exp = Math.max(...evs.filter((e) => e.action === 'grant.activated' || e.action === 'rule.applied').map((e) => Date.parse(String(e.details.expiresAt ?? '')) || 0), req?.expiresAt ?? 0);
  for (const c of closes) {
    const ruleExp = Date.parse(String(c.details.expiresAt ?? '')) || exp;
    worst.push([c.time - Math.min(ruleExp || Infinity, exp || Infinity), id]);
  }
}
worst.sort((a, b) => b[0] - a[0]);
console.log(worst.slice(0, 5));
for (const [, id] of worst.slice(0, 2)) {
  const req = await store.get(id);
  console.log(id, req?.status, req?.statusReason, new Date(req?.expiresAt ?? 0).toISOString());
  for (const e of byReq.get(id)!) console.log('  ', new Date(e.time).toISOString(), e.action, e.actor, JSON.stringify(e.details).slice(0, 160));
}
r.disconnect();
