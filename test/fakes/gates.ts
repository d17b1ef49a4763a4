// A gate a test holds still: each operation can be paused at a named point (before or after it
// writes), so a test decides exactly what else happens in between, then releases or fails it.

/** A promise the test resolves or rejects by hand. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** One paused operation: `reached` resolves when the code under test arrives there; `release()` lets it go on, `fail()` makes it throw. */
export interface Hold {
  reached: Promise<void>;
  release(): void;
  fail(err?: unknown): void;
}

/** Holds keyed by point name, each used once, in the order they were asked for. */
export class Holds<Point extends string> {
  private readonly queue = new Map<Point, Array<{ reached: Deferred; gate: Deferred; when?: (arg: unknown) => boolean }>>();

  /** The next time the code passes `point` (and `when` holds for its argument), it stops there. */
  hold(point: Point, when?: (arg: unknown) => boolean): Hold {
    const h = { reached: deferred(), gate: deferred(), ...(when ? { when } : {}) };
    this.queue.set(point, [...(this.queue.get(point) ?? []), h]);
    return { reached: h.reached.promise, release: () => h.gate.resolve(), fail: (err = new Error(`${point} failed (test)`)) => h.gate.reject(err) };
  }

  /** Called by the fake at `point`: waits if a hold is set there. */
  async pass(point: Point, arg?: unknown): Promise<void> {
    const list = this.queue.get(point) ?? [];
    const i = list.findIndex((h) => !h.when || h.when(arg));
    if (i < 0) return;
    const [h] = list.splice(i, 1);
    h!.reached.resolve();
    await h!.gate.promise;
  }
}

/** Lets every pending promise callback run (the fakes are in memory: a few macrotask turns settle them). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
