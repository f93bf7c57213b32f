import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { settle, VirtualClock } from "../../controller/core/clock.ts";
import { defaultControllerRateLimiter } from "../../controller/engine/ratelimit.ts";
import { WorkQueue } from "../../controller/engine/workqueue.ts";

type Command =
  | { op: "add"; key: string }
  | { op: "addAfter"; key: string; ms: number }
  | { op: "addRateLimited"; key: string }
  | { op: "get" }
  | { op: "done"; pick: number }
  | { op: "advance"; ms: number };

const keyArb = fc.constantFrom("vm/a", "vm/b", "vm/c", "host/esx-01");
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant("add" as const), key: keyArb }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("addAfter" as const), key: keyArb, ms: fc.integer({ min: 1, max: 50 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("addRateLimited" as const), key: keyArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("get" as const) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("done" as const), pick: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 40 }) }), weight: 1 },
);

/** Drives a queue as concurrent workers would, recording every handout against the step it happened in. */
class QueueDriver {
  readonly clock = new VirtualClock();
  readonly queue = new WorkQueue({ clock: this.clock, rateLimiter: defaultControllerRateLimiter<string>(this.clock, { jitter: 0 }) });
  readonly held = new Set<string>();
  readonly violations: string[] = [];
  readonly lastAddStep = new Map<string, number>();
  readonly handoutSteps = new Map<string, number[]>();
  step = 0;

  startGet(): void {
    this.queue.get().then((key) => {
      if (key === undefined) return;
      if (this.held.has(key)) this.violations.push(`${key} handed out at step ${this.step} while still held`);
      this.held.add(key);
      this.handoutSteps.set(key, [...(this.handoutSteps.get(key) ?? []), this.step]);
    }, (error: unknown) => {
      this.violations.push(`get failed: ${String(error)}`);
    });
  }

  finish(key: string): void {
    this.held.delete(key);
    this.queue.done(key);
  }

  async run(command: Command): Promise<void> {
    switch (command.op) {
      case "add":
        this.lastAddStep.set(command.key, this.step);
        this.queue.add(command.key);
        break;
      case "addAfter":
        this.lastAddStep.set(command.key, this.step);
        this.queue.addAfter(command.key, command.ms);
        break;
      case "addRateLimited":
        this.lastAddStep.set(command.key, this.step);
        this.queue.addRateLimited(command.key);
        break;
      case "get":
        this.startGet();
        break;
      case "done": {
        const keys = [...this.held];
        const key = keys[command.pick % Math.max(1, keys.length)];
        if (key !== undefined) this.finish(key);
        break;
      }
      case "advance":
        await this.clock.advance(command.ms);
        break;
    }
    // Let handouts land before the next step, so each is recorded against the step that caused it.
    await settle();
    if (this.queue.inFlight() !== this.held.size) {
      this.violations.push(`step ${this.step}: queue has ${this.queue.inFlight()} in flight, workers hold ${this.held.size}`);
    }
    this.step++;
  }

  /** Finishes everything held, lets delays pass and keeps taking keys until nothing is left. */
  async drain(): Promise<void> {
    for (let rounds = 0; rounds < 1000; rounds++) {
      for (const key of [...this.held]) this.finish(key);
      await settle();
      this.step++;
      if (this.queue.len() > 0) this.startGet();
      else if (this.clock.nextTimerAt() !== undefined) await this.clock.advanceTo(this.clock.nextTimerAt()!);
      else if (this.held.size === 0) return;
      await settle();
    }
    this.violations.push("queue did not drain");
  }
}

describe("WorkQueue properties", () => {
  it("never hands a key to two workers at once, and processes every key after its last add", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { maxLength: 60 }), async (commands) => {
        const driver = new QueueDriver();
        for (const command of commands) await driver.run(command);
        await driver.drain();
        driver.queue.shutDown();
        assert.deepEqual(driver.violations, []);
        for (const [key, addedAt] of driver.lastAddStep) {
          const handouts = driver.handoutSteps.get(key) ?? [];
          assert.ok(handouts.some((step) => step >= addedAt), `${key} added at step ${addedAt} but handed out only at ${handouts.join(", ")}`);
        }
      }),
      { numRuns: 150 },
    );
  });
});
