import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { settle, VirtualClock, type Timer } from "../../controller/core/clock.ts";
import { defaultControllerRateLimiter } from "../../controller/engine/ratelimit.ts";
import { NotProcessingError, WorkQueue, type WorkQueueEvents } from "../../controller/engine/workqueue.ts";

function newQueue(events?: WorkQueueEvents<string>): { clock: VirtualClock; queue: WorkQueue } {
  const clock = new VirtualClock();
  const rateLimiter = defaultControllerRateLimiter<string>(clock, { jitter: 0 });
  return { clock, queue: new WorkQueue({ clock, rateLimiter, ...(events ? { events } : {}) }) };
}

/** A VirtualClock that counts its live timers (VirtualClock's own count includes cancelled ones). */
class TimerCountingClock extends VirtualClock {
  live = 0;

  override setTimer(ms: number, fn: () => void): Timer {
    this.live++;
    let open = true;
    const close = () => {
      if (open) this.live--;
      open = false;
    };
    const timer = super.setTimer(ms, () => {
      close();
      fn();
    });
    return {
      cancel: () => {
        close();
        timer.cancel();
      },
    };
  }
}

/** Takes every queued key, marking each done, and returns them in the order they were handed out. */
async function drain(queue: WorkQueue): Promise<string[]> {
  const seen: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    assert.ok(key !== undefined);
    seen.push(key);
    queue.done(key);
  }
  return seen;
}

/** Records what a pending get() resolves to, so a test can look without awaiting it. */
function watch(promise: Promise<string | undefined>): { settled: boolean; key: string | undefined } {
  const outcome: { settled: boolean; key: string | undefined } = { settled: false, key: undefined };
  promise.then((key) => {
    outcome.settled = true;
    outcome.key = key;
  }, (error: unknown) => {
    throw error;
  });
  return outcome;
}

describe("WorkQueue", () => {
  it("collapses duplicate adds of a queued key into one", async () => {
    const { queue } = newQueue();
    for (let i = 0; i < 5; i++) queue.add("vm/a");
    queue.add("vm/b");
    queue.add("vm/a");
    assert.equal(queue.len(), 2);
    assert.deepEqual(await drain(queue), ["vm/a", "vm/b"]);
  });

  it("hands keys out in the order they were first added", async () => {
    const { queue } = newQueue();
    const keys = ["host/esx-03", "vm/db-1", "cluster/prod", "vm/web-1", "host/esx-01"];
    for (const key of keys) queue.add(key);
    assert.deepEqual(await drain(queue), keys);
  });

  it("holds back a key added while it is processed until done, then hands it out again", async () => {
    const { queue } = newQueue();
    queue.add("vm/a");
    const first = await queue.get();
    assert.equal(first, "vm/a");
    queue.add("vm/a");
    queue.add("vm/a");
    assert.equal(queue.len(), 0, "a key being processed is not queued a second time");
    const second = watch(queue.get());
    await settle();
    assert.equal(second.settled, false, "no second worker gets the key while the first holds it");
    queue.done("vm/a");
    await settle();
    assert.deepEqual(second, { settled: true, key: "vm/a" });
    queue.done("vm/a");
    assert.equal(queue.len(), 0);
  });

  it("queues a key re-added during processing behind keys that were already waiting", async () => {
    const { queue } = newQueue();
    queue.add("a");
    const held = await queue.get();
    assert.equal(held, "a");
    queue.add("b");
    queue.add("a");
    queue.add("c");
    queue.done("a");
    assert.deepEqual(await drain(queue), ["b", "c", "a"]);
  });

  it("rejects done for a key no worker holds", () => {
    const { queue } = newQueue();
    queue.add("vm/a");
    assert.throws(() => queue.done("vm/a"), NotProcessingError);
  });

  it("wakes a waiting worker as soon as a key is added", async () => {
    const { queue } = newQueue();
    const waiting = watch(queue.get());
    await settle();
    assert.equal(waiting.settled, false);
    queue.add("vm/a");
    await settle();
    assert.deepEqual(waiting, { settled: true, key: "vm/a" });
    assert.equal(queue.inFlight(), 1);
  });

  it("adds a delayed key when its time comes, not before", async () => {
    const { clock, queue } = newQueue();
    queue.addAfter("vm/a", 30_000);
    assert.equal(queue.len(), 0);
    assert.equal(queue.delayedCount(), 1);
    await clock.advance(29_999);
    assert.equal(queue.len(), 0);
    await clock.advance(1);
    assert.equal(queue.len(), 1);
    assert.equal(queue.delayedCount(), 0);
  });

  it("keeps the earliest due time when a key is delayed twice, and adds it only once", async () => {
    const { clock, queue } = newQueue();
    queue.addAfter("vm/a", 100);
    queue.addAfter("vm/a", 50);
    queue.addAfter("vm/a", 80);
    await clock.advance(50);
    assert.deepEqual(await drain(queue), ["vm/a"]);
    await clock.advance(1000);
    assert.equal(queue.len(), 0, "the superseded due times add nothing later");
  });

  it("releases delayed keys in due order, with one timer however many keys wait", async () => {
    const clock = new TimerCountingClock();
    const queue = new WorkQueue({ clock, rateLimiter: defaultControllerRateLimiter<string>(clock, { jitter: 0 }) });
    const start = clock.now();
    const dueAfter: Record<string, number> = { "vm/c": 300, "vm/a": 100, "vm/d": 300, "vm/b": 200 };
    for (const [key, ms] of Object.entries(dueAfter)) {
      for (let i = 0; i < 10; i++) queue.addAfter(key, ms + i);
    }
    assert.equal(clock.live, 1);
    const released: Array<[string, number]> = [];
    for (let step = 0; step < 4; step++) {
      await clock.advanceTo(clock.nextTimerAt()!);
      for (const key of await drain(queue)) released.push([key, clock.now() - start]);
    }
    assert.deepEqual(released, [["vm/a", 100], ["vm/b", 200], ["vm/c", 300], ["vm/d", 300]]);
    assert.equal(clock.live, 0);
  });

  it("adds at once when the delay is zero or negative", () => {
    const { queue } = newQueue();
    queue.addAfter("vm/a", 0);
    queue.addAfter("vm/b", -5);
    assert.equal(queue.len(), 2);
  });

  it("backs off a failing key by doubling delays, and forget resets it", async () => {
    const { clock, queue } = newQueue();
    const start = clock.now();
    const readyAt: number[] = [];
    for (let failure = 0; failure < 4; failure++) {
      queue.addRateLimited("vm/a");
      await clock.advanceTo(clock.nextTimerAt()!);
      readyAt.push(clock.now());
      await drain(queue);
    }
    const gaps = readyAt.map((t, i) => t - (i === 0 ? start : readyAt[i - 1]!));
    assert.deepEqual(gaps, [5, 10, 20, 40]);
    assert.equal(queue.numRequeues("vm/a"), 4);
    queue.forget("vm/a");
    assert.equal(queue.numRequeues("vm/a"), 0);
    const before = clock.now();
    queue.addRateLimited("vm/a");
    assert.equal(clock.nextTimerAt()! - before, 5);
  });

  it("releases workers waiting in get with undefined on shutdown and ignores later adds", async () => {
    const { queue } = newQueue();
    const waiters = [watch(queue.get()), watch(queue.get())];
    queue.shutDown();
    await settle();
    assert.deepEqual(waiters, [{ settled: true, key: undefined }, { settled: true, key: undefined }]);
    queue.add("vm/a");
    queue.addAfter("vm/b", 10);
    queue.addRateLimited("vm/c");
    assert.equal(queue.len(), 0);
    assert.equal(queue.delayedCount(), 0);
    assert.equal(await queue.get(), undefined);
  });

  it("still hands out keys queued before shutdown, then undefined", async () => {
    const { clock, queue } = newQueue();
    queue.add("vm/a");
    queue.addAfter("vm/b", 10);
    queue.shutDown();
    assert.equal(clock.pendingTimers(), 0, "delayed keys are dropped with their timer");
    assert.equal(await queue.get(), "vm/a");
    queue.done("vm/a");
    assert.equal(await queue.get(), undefined);
  });

  it("drains on shutdown: resolves only once every key handed out is done", async () => {
    const { queue } = newQueue();
    queue.add("vm/a");
    queue.add("vm/b");
    const a = await queue.get();
    const b = await queue.get();
    let drained = false;
    const draining = queue.shutDownWithDrain().then(() => {
      drained = true;
    });
    queue.done(a!);
    await settle();
    assert.equal(drained, false);
    queue.done(b!);
    await draining;
    assert.equal(drained, true);
  });

  it("resolves whenIdle only after every queued key has been processed, and again on each later call", async () => {
    const { queue } = newQueue();
    await queue.whenIdle();
    queue.add("vm/a");
    let idle = false;
    const waiting = queue.whenIdle().then(() => {
      idle = true;
    });
    const key = await queue.get();
    await settle();
    assert.equal(idle, false, "a key in flight is pending work");
    queue.done(key!);
    await waiting;
    queue.addAfter("vm/a", 1000);
    await queue.whenIdle();
    assert.equal(queue.delayedCount(), 1, "a delayed key that is not yet due is not pending work");
  });

  it("reports depth, adds, retries and time in queue to its event hooks", async () => {
    const depths: number[] = [];
    const adds: string[] = [];
    const retries: string[] = [];
    const latencies: Array<[string, number]> = [];
    const { clock, queue } = newQueue({
      onDepth: (n) => depths.push(n),
      onAdd: (key) => adds.push(key),
      onRetry: (key) => retries.push(key),
      onQueueLatency: (key, ms) => latencies.push([key, ms]),
    });
    queue.add("vm/a");
    queue.add("vm/a");
    queue.add("vm/b");
    await clock.advance(250);
    const a = await queue.get();
    queue.add("vm/a");
    queue.addRateLimited("vm/b");
    assert.deepEqual(adds, ["vm/a", "vm/b", "vm/a"]);
    assert.deepEqual(retries, ["vm/b"]);
    assert.deepEqual(depths, [1, 2, 1, 2]);
    assert.deepEqual(latencies, [["vm/a", 250]]);
    queue.done(a!);
    await clock.advance(10);
    assert.deepEqual(await drain(queue), ["vm/b", "vm/a"]);
    assert.deepEqual(latencies.slice(1), [["vm/b", 260], ["vm/a", 10]]);
  });
});
