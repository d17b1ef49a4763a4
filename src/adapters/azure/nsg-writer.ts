// NSG writes (AzureGate, through ArmWriter): every change queued for an NSG as ONE whole-NSG PUT
// with If-Match where ARM allows it (JIT_NSG_WRITES=auto), else the bot's own rules as child
// `securityRules` operations, one at a time (see docs/security.md, "How NSG rules are written").
import { ArmError, NETWORK_API, classify, type ArmDoc } from './arm.js';
import { prioritize, settled, type ArmWriter, type NsgPlan, type Pending } from './arm-writer.js';
import { checkNsgLimits, nsgRulesOf, writableProps } from './nsg-rules.js';
import { CHILD_RULES_FOR_MS, childRulesOnly, wholeNsgBody } from './nsg-whole.js';

/**
 * Applies every change queued for an NSG (closes first) as ONE whole-NSG PUT with If-Match,
 * planned from one read and followed to Succeeded. 412 (someone wrote the NSG meanwhile)
 * re-reads and plans again; busy, throttled or canceled retries as the child writer does. Returns
 * the changes still to do with child-rule operations: all of them when ARM refuses the whole-NSG
 * write for a reason child operations do not meet (then this NSG takes child rules for an hour),
 * or for any other refusal (each change then gets its own verdict); none once written.
 */
export async function writeNsgWhole(w: ArmWriter, nsgId: string, lockKey: string, changes: Array<Pending<NsgPlan>>): Promise<Array<Pending<NsgPlan>>> {
  const name = nsgId.split('/').pop()!;
  const deadline = Date.now() + w.deps.nsgDeadlineMs;
  let pending = prioritize(changes);
  for (let attempt = 1; ; attempt++) {
    const release = await w.lock(lockKey, deadline);
    try {
      // One write's time, for the close estimate and holds: the read, the PUT and its operation.
      let readAt = Date.now();
      let got = await w.arm.getOrNull(nsgId, NETWORK_API);
      // Queue behind an operation in flight (another writer's) rather than meet a 409.
      while (got && /^(updating|creating|deleting|accepted)$/i.test(String(got.doc.properties?.provisioningState ?? ''))) {
        if (Date.now() + w.arm.pollMs > deadline) break;
        await w.deps.sleep(w.arm.pollMs);
        readAt = Date.now();
        got = await w.arm.getOrNull(nsgId, NETWORK_API);
      }
      // Gone: the child writer says what that means for each change.
      if (!got) return pending;
      const { doc, etag } = got;
      const rules = nsgRulesOf(doc);
      const present = new Set(rules.map((r) => r.name));
      const planned: Array<{ c: Pending<NsgPlan>; plan: NsgPlan }> = [];
      for (const c of pending) {
        // A delete sent before whose answer was lost, and whose rule is gone now: it was ours.
        for (const [n, r] of c.intended) if (!present.has(n)) c.seen.set(n, r);
        c.intended.clear();
        const before = [...rules];
        let plan: NsgPlan;
        try {
          plan = c.plan(doc);
        } catch (err) {
          // Nothing of a refused change goes into the PUT.
          rules.splice(0, rules.length, ...before);
          c.reject(err);
          continue;
        }
        // The document becomes what the PUT will carry; later changes plan from it.
        for (const r of plan.deletes) {
          const i = rules.findIndex((x) => x.name === r.name);
          if (i >= 0) rules.splice(i, 1);
        }
        for (const r of plan.puts) {
          const i = rules.findIndex((x) => x.name === r.name);
          if (i >= 0) rules[i] = r;
          else rules.push(r);
        }
        const deleted = new Set(plan.deletes.map((r) => r.name));
        for (const r of plan.results) if (deleted.has(r.name)) c.intended.set(r.name, r);
        planned.push({ c, plan });
      }
      const changers = planned.filter(({ plan }) => plan.puts.length + plan.deletes.length > 0);
      if (changers.length > 0) {
        checkNsgLimits(nsgId, rules);
        await w.arm.put(nsgId, NETWORK_API, wholeNsgBody(doc, rules), etag ? { ifMatch: etag } : {}, deadline);
        // From the read (not the wait for someone's operation in flight) to Succeeded.
        w.latency.record(lockKey, 'op', Date.now() - readAt);
        w.deps.onWritten(nsgId);
        for (const { c } of changers) c.wrote = true;
      }
      for (const { c, plan } of planned) {
        c.intended.clear();
        for (const r of plan.results) c.seen.set(r.name, r);
        c.resolve([...c.seen.values()]);
      }
      w.deps.onNsgRead(nsgId, doc);
      return [];
    } catch (err) {
      const unsettled = pending.filter((c) => !settled(c));
      const refused = childRulesOnly(err);
      if (refused) {
        if (!w.childRulesUntil.has(nsgId.toLowerCase())) w.deps.log('azure: ARM refused a whole-NSG write; this NSG is written with child rules for an hour', { nsg: name, code: refused });
        w.childRulesUntil.set(nsgId.toLowerCase(), { until: w.deps.now() + CHILD_RULES_FOR_MS, code: refused });
        w.nsgFallbacks[refused] = (w.nsgFallbacks[refused] ?? 0) + 1;
        return unsettled;
      }
      const how = classify(err);
      // Any other refusal (a lock, a validation error on someone's rule): each change is tried on its own.
      if (how === 'fatal') return unsettled;
      pending = unsettled;
      const next = w.nextTry(name, err, how, attempt, deadline, w.deps.nsgDeadlineMs);
      if (next instanceof Error) {
        for (const c of pending) c.reject(next);
        return [];
      }
      await release();
      await w.deps.sleep(next);
    } finally {
      await release();
    }
  }
}

/**
 * Applies NSG changes as child-rule operations, one at a time (ARM: one operation per NSG), each
 * followed to Succeeded. Planned from one read; a conflict, a busy NSG or a canceled operation
 * re-reads and plans the changes not yet done again.
 */
export async function writeNsg(w: ArmWriter, nsgId: string, lockKey: string, changes: Array<Pending<NsgPlan>>): Promise<void> {
  if (w.nsgBatched(nsgId)) {
    changes = await writeNsgWhole(w, nsgId, lockKey, changes);
    if (changes.length === 0) return;
  }
  const name = nsgId.split('/').pop()!;
  // The deadline bounds retries without progress: each change done moves it (a long queue of
  // rule operations on one NSG is progress, not a stuck write).
  let deadline = Date.now() + w.deps.nsgDeadlineMs;
  // Closes first: a revocation does not wait behind the opens queued before it (see prioritize).
  let pending = prioritize(changes);
  for (let attempt = 1; ; attempt++) {
    const release = await w.lock(lockKey, deadline);
    try {
      const got = await w.arm.getOrNull(nsgId, NETWORK_API);
      const doc: ArmDoc = got?.doc ?? { properties: { securityRules: [] } };
      for (let next = 0; next < pending.length; next++) {
        // A close queued while this batch runs goes next, not after the whole batch.
        pending = w.takeUrgent(lockKey, nsgId, pending, next);
        const c = pending[next]!;
        let plan: NsgPlan;
        try {
          plan = c.plan(doc);
        } catch (err) {
          c.reject(err);
          continue;
        }
        if (!got && plan.puts.length > 0) {
          c.reject(new ArmError(`${name}: the network security group no longer exists`, 'ResourceNotFound', 404));
          continue;
        }
        // A delete tried before whose answer was lost, and whose rule is gone now: it was ours.
        const present = new Set(nsgRulesOf(doc).map((r) => r.name));
        for (const [n, r] of c.intended) if (!present.has(n)) c.seen.set(n, r);
        c.intended.clear();
        // What needs no operation counts at once; an operation's rule once the operation succeeded.
        const byName = new Map(plan.results.map((r) => [r.name, r]));
        const withOp = new Set([...plan.puts, ...plan.deletes].map((r) => r.name));
        for (const r of plan.results) if (!withOp.has(r.name)) c.seen.set(r.name, r);
        try {
          for (const r of plan.puts) {
            const sent = Date.now();
            await w.arm.put(`${nsgId}/securityRules/${encodeURIComponent(r.name)}`, NETWORK_API, { properties: writableProps(r.properties) }, {}, deadline);
            w.latency.record(lockKey, 'op', Date.now() - sent);
            w.deps.onWritten(nsgId);
            const applied = byName.get(r.name);
            if (applied) c.seen.set(r.name, applied);
          }
          for (const r of plan.deletes) {
            const applied = byName.get(r.name);
            if (applied) c.intended.set(r.name, applied);
            // 204: someone else (another replica's sweep) removed it first; theirs to report.
            const sent = Date.now();
            const existed = await w.arm.delete(`${nsgId}/securityRules/${encodeURIComponent(r.name)}`, NETWORK_API, deadline);
            if (existed) w.latency.record(lockKey, 'op', Date.now() - sent);
            c.intended.delete(r.name);
            if (existed && applied) c.seen.set(r.name, applied);
            // Later changes of this batch plan from the NSG as it is now.
            const rules = nsgRulesOf(doc);
            const i = rules.findIndex((x) => x.name === r.name);
            if (i >= 0) rules.splice(i, 1);
          }
          if (plan.puts.length + plan.deletes.length > 0) {
            c.wrote = true;
            deadline = Math.max(deadline, Date.now() + w.deps.nsgDeadlineMs);
          }
          c.resolve([...c.seen.values()]);
        } catch (err) {
          // Fatal: this change fails (open() rolls its grant back); the others go on. Otherwise
          // this change and those after it are planned again from a fresh read.
          if (classify(err) === 'fatal') c.reject(err);
          else throw err;
        }
      }
      w.deps.onNsgRead(nsgId, doc);
      return;
    } catch (err) {
      const how = classify(err);
      const unsettled = pending.filter((c) => !settled(c));
      if (how === 'fatal') {
        for (const c of unsettled) c.reject(err);
        return;
      }
      pending = unsettled;
      const next = w.nextTry(name, err, how, attempt, deadline, w.deps.nsgDeadlineMs);
      if (next instanceof Error) {
        for (const c of pending) c.reject(next);
        return;
      }
      await release();
      await w.deps.sleep(next);
    } finally {
      await release();
    }
  }
}
