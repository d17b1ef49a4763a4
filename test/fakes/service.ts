// A JitService on the in-memory fakes and a ManualClock: the use cases exactly as bootstrap wires
// them, minus Redis, BullMQ and HTTP. `restart()` is another process on the same store, gate and
// scheduler (what a crash leaves behind).
import { JitService, type ServiceSettings } from '../../src/app/service.js';
import { formatRequestId, REQUEST_ID_LENGTH } from '../../src/core/ids.js';
import type { Reply } from '../../src/core/reply.js';
import type { AccessRequest } from '../../src/core/types.js';
import { testBook } from '../fixtures/book.js';
import { ManualClock } from './clock.js';
import { ManualScheduler, MemoryAuditLog, MemoryGate, MemoryStore, RecordingNotifier } from './ports.js';
import { p } from '../fixtures/ids.js';

export interface FakeWorld {
  svc: JitService;
  clock: ManualClock;
  store: MemoryStore;
  audit: MemoryAuditLog;
  scheduler: ManualScheduler;
  gate: MemoryGate;
  notifier: RecordingNotifier;
  logged: string[];
  /** A chat command as `actor` (through `execute`, as every adapter does). */
  cmd(actor: string, text: string): Promise<Reply>;
  /** The request as stored. */
  get(id: string): Promise<AccessRequest>;
  /** A new JitService (another process or replica) on the same store, gate, scheduler and clock. */
  restart(): JitService;
}

export function fakeWorld(settings: Partial<ServiceSettings> = {}): FakeWorld {
  const clock = new ManualClock();
  const audit = new MemoryAuditLog();
  const store = new MemoryStore(audit, clock);
  const scheduler = new ManualScheduler(clock);
  const gate = new MemoryGate();
  const notifier = new RecordingNotifier();
  const logged: string[] = [];
  let n = 0;
  // Deterministic ids: r0000000001, r0000000002, ...
  const ids = {
    requestId: () => formatRequestId(Uint8Array.from(String(++n).padStart(REQUEST_ID_LENGTH, '0'), (c) => Number(c))),
    token: () => `token${++n}`,
  };
  const make = () =>
    new JitService({
      store, audit, scheduler, gate, notifier, clock, ids, book: testBook(),
      settings: { minDurationMs: 1000, ...settings },
      log: (msg) => logged.push(msg),
    });
  const world: FakeWorld = {
    svc: make(),
    clock, store, audit, scheduler, gate, notifier, logged,
    cmd: (actor, text) => world.svc.execute(p(actor), text, { via: 'test' }),
    get: async (id) => {
      const r = await store.get(id);
      if (!r) throw new Error(`no request ${id}`);
      return r;
    },
    restart: () => make(),
  };
  return world;
}

/** The request a reply is about. */
export function idOf(reply: Reply): string {
  if ('request' in reply && reply.request) return reply.request.id;
  throw new Error(`no request in the reply: ${JSON.stringify(reply)}`);
}
