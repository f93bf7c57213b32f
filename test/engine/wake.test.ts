// A reconcile that asks to look again at a time that passed while it ran is looked at again at once: a
// requeueAfter of 0 would tell the runner "not at all" (controller-runtime's meaning), and a lost wake-up
// left the VMs of a failed host waiting for a lease that had long expired.

import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../controller/core/clock.ts";
import { WorkQueue } from "../../controller/engine/workqueue.ts";
import { ReconcileRunner } from "../../controller/engine/runner.ts";
import { wakeAt, type ReconcileContext } from "../../controller/engine/context.ts";

test("a wake-up time already past when the reconcile ends brings the key back at once", async () => {
  const clock = new VirtualClock();
  const ctx = { clock } as unknown as ReconcileContext;
  const queue = new WorkQueue<string>({ clock });
  let runs = 0;
  const runner = new ReconcileRunner({
    queue,
    reconcile: () => {
      runs++;
      // The plan said "at now", and the reconcile took a moment of clock time.
      return runs === 1 ? wakeAt(ctx, clock.now() - 5) : undefined;
    },
  });
  queue.add("HostCluster/prod");
  runner.start();
  await runner.idle();
  await clock.advance(10);
  await runner.idle();
  assert.equal(runs, 2, "looked at again");
  assert.equal(wakeAt(ctx, clock.now() - 1_000).requeueAfter, 1);
  assert.equal(wakeAt(ctx, clock.now() + 1_000).requeueAfter, 1_000);
  await runner.stop();
});
