import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { settle, VirtualClock } from "../../controller/core/clock.ts";
import { defaultControllerRateLimiter } from "../../controller/engine/ratelimit.ts";
import { ReconcileRunner, RunnerStateError, type ReconcileOutcome, type ReconcileRunnerOptions } from "../../controller/engine/runner.ts";
import { WorkQueue } from "../../controller/engine/workqueue.ts";
import { seededRandom } from "../support/random.ts";


/** Gives other reconciles a chance to run in between, as a reconcile awaiting I/O would. */
async function yieldTimes(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function setup(options: Omit<ReconcileRunnerOptions<string>, "queue">, jitter = 0) {
  const clock = new VirtualClock();
  const queue = new WorkQueue({ clock, rateLimiter: defaultControllerRateLimiter<string>(clock, { jitter, random: seededRandom(1) }) });
  const runner = new ReconcileRunner({ queue, ...options });
  return { clock, queue, runner };
}

describe("ReconcileRunner", () => {
  it("reconciles every queued key, and idle resolves only once all of them are done", async () => {
    const reconciled: string[] = [];
    const { queue, runner } = setup({
      workers: 3,
      reconcile: async (key) => {
        await yieldTimes(key.length % 3 + 1);
        reconciled.push(key);
      },
    });
    runner.start();
    const keys = ["vm/a", "vm/bb", "vm/ccc", "host/esx-01", "cluster/prod"];
    for (const key of keys) queue.add(key);
    await runner.idle();
    assert.deepEqual([...reconciled].sort(), [...keys].sort());
    await runner.stop();
  });

  it("never reconciles one key on two workers at once, and reconciles a key re-added mid-reconcile again", async () => {
    const active = new Set<string>();
    const overlaps: string[] = [];
    const runs = new Map<string, number>();
    const { queue, runner } = setup({
      workers: 4,
      reconcile: async (key) => {
        if (active.has(key)) overlaps.push(key);
        active.add(key);
        runs.set(key, (runs.get(key) ?? 0) + 1);
        // Re-add our own key and others while in flight, as watch events arriving mid-reconcile do.
        if ((runs.get(key) ?? 0) < 3) {
          queue.add(key);
          queue.add(key === "vm/a" ? "vm/b" : "vm/a");
        }
        await yieldTimes(3);
        active.delete(key);
      },
    });
    runner.start();
    queue.add("vm/a");
    queue.add("vm/b");
    queue.add("vm/c");
    await runner.idle();
    assert.deepEqual(overlaps, []);
    assert.ok((runs.get("vm/a") ?? 0) >= 3);
    assert.ok((runs.get("vm/b") ?? 0) >= 3);
    assert.ok((runs.get("vm/c") ?? 0) >= 3);
    await runner.stop();
  });

  it("retries a failing key with growing backoff until it succeeds, while other keys carry on", async () => {
    const errors: Array<[string, number]> = [];
    const attemptsAt: number[] = [];
    const healthy: string[] = [];
    let failuresLeft = 4;
    const { clock, queue, runner } = setup({
      workers: 2,
      reconcile: (key) => {
        if (key !== "vm/bad") {
          healthy.push(key);
          return;
        }
        attemptsAt.push(clock.now());
        if (failuresLeft-- > 0) throw new Error("host esx-01 not responding");
      },
      onError: (key, error, retries) => {
        assert.ok(error instanceof Error);
        errors.push([key, retries]);
      },
    });
    runner.start();
    queue.add("vm/bad");
    queue.add("vm/good-1");
    await runner.idle();
    queue.add("vm/good-2");
    await runner.idle();
    assert.deepEqual(healthy, ["vm/good-1", "vm/good-2"]);
    while (clock.nextTimerAt() !== undefined) {
      await clock.advanceTo(clock.nextTimerAt()!);
      await runner.idle();
    }
    const gaps = attemptsAt.slice(1).map((t, i) => t - attemptsAt[i]!);
    assert.deepEqual(gaps, [5, 10, 20, 40]);
    assert.deepEqual(errors, [["vm/bad", 1], ["vm/bad", 2], ["vm/bad", 3], ["vm/bad", 4]]);
    assert.equal(queue.numRequeues("vm/bad"), 0, "success forgets the failures");
    await runner.stop();
  });

  it("keeps retry delays within the jitter bounds", async () => {
    const attemptsAt: number[] = [];
    const { clock, queue, runner } = setup({
      reconcile: () => {
        attemptsAt.push(clock.now());
        if (attemptsAt.length < 6) throw new Error("datastore busy");
      },
      onError: () => {},
    }, 0.1);
    runner.start();
    queue.add("vm/a");
    await runner.idle();
    while (clock.nextTimerAt() !== undefined) {
      await clock.advanceTo(clock.nextTimerAt()!);
      await runner.idle();
    }
    const gaps = attemptsAt.slice(1).map((t, i) => t - attemptsAt[i]!);
    assert.equal(gaps.length, 5);
    gaps.forEach((gap, i) => {
      const base = 5 * 2 ** i;
      assert.ok(gap >= base && gap < base * 1.1, `retry ${i + 1} after ${gap} ms, outside [${base}, ${base * 1.1})`);
    });
    await runner.stop();
  });

  it("reconciles again after requeueAfter, at that virtual time and not before", async () => {
    const attemptsAt: number[] = [];
    const { clock, queue, runner } = setup({
      reconcile: () => {
        attemptsAt.push(clock.now());
        return attemptsAt.length < 3 ? { requeueAfter: 30_000 } : undefined;
      },
    });
    const start = clock.now();
    runner.start();
    queue.add("vm/lease");
    await runner.idle();
    assert.equal(attemptsAt.length, 1, "a requeue that is not yet due is not pending work");
    await clock.advance(29_999);
    await runner.idle();
    assert.equal(attemptsAt.length, 1);
    await clock.advance(1);
    await runner.idle();
    await clock.advance(30_000);
    await runner.idle();
    await clock.advance(60_000);
    await runner.idle();
    assert.deepEqual(attemptsAt.map((t) => t - start), [0, 30_000, 60_000]);
    await runner.stop();
  });

  it("reports each reconcile's outcome and its duration measured by the stopwatch", async () => {
    let now = 0;
    const reports: Array<[string, number, ReconcileOutcome]> = [];
    const { queue, runner } = setup({
      stopwatch: () => now,
      reconcile: async (key) => {
        await yieldTimes(1);
        now += 7;
        if (key === "vm/error") throw new Error("boom");
        if (key === "vm/later") return { requeueAfter: 1000 };
        if (key === "vm/waiting") return { requeue: true };
        return undefined;
      },
      onError: () => {},
      onReconciled: (key, ms, outcome) => reports.push([key, ms, outcome]),
    });
    runner.start();
    for (const key of ["vm/ok", "vm/error", "vm/later", "vm/waiting"]) queue.add(key);
    await runner.idle();
    assert.deepEqual(reports, [
      ["vm/ok", 7, "success"],
      ["vm/error", 7, "error"],
      ["vm/later", 7, "requeue"],
      ["vm/waiting", 7, "requeue"],
    ]);
    assert.equal(queue.numRequeues("vm/waiting"), 1, "requeue: true backs off like a failure");
    await runner.stop();
  });

  it("can be awaited for idleness again and again between clock steps", async () => {
    const reconciled: string[] = [];
    const { clock, queue, runner } = setup({ workers: 2, reconcile: async (key) => { await yieldTimes(2); reconciled.push(key); } });
    runner.start();
    await runner.idle();
    for (let round = 0; round < 5; round++) {
      queue.addAfter(`vm/${round}`, 100);
      await clock.advance(100);
      await runner.idle();
      assert.deepEqual(reconciled, Array.from({ length: round + 1 }, (_, i) => `vm/${i}`));
    }
    await runner.stop();
  });

  it("stops gracefully: finishes the reconcile in flight, releases idle workers, takes no new key", async () => {
    const started: string[] = [];
    const finished: string[] = [];
    const { clock, queue, runner } = setup({
      workers: 3,
      reconcile: async (key) => {
        started.push(key);
        await clock.sleep(1000);
        finished.push(key);
      },
    });
    runner.start();
    queue.add("vm/slow");
    await settle();
    let stopped = false;
    const stopping = runner.stop().then(() => {
      stopped = true;
    });
    queue.add("vm/late");
    await settle();
    assert.equal(stopped, false, "stop waits for the reconcile in flight");
    await clock.advance(1000);
    await stopping;
    assert.deepEqual(started, ["vm/slow"]);
    assert.deepEqual(finished, ["vm/slow"]);
    assert.equal(runner.isRunning(), false);
    assert.throws(() => runner.start(), RunnerStateError);
  });

  it("refuses to run without at least one worker", () => {
    const clock = new VirtualClock();
    assert.throws(() => new ReconcileRunner({ queue: new WorkQueue({ clock }), reconcile: () => {}, workers: 0 }), RangeError);
  });
});
