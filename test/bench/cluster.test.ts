// The cluster benchmark kept working at a small size: Vireo places every VM and kube-scheduler binds every pod,
// each through a real kube-apiserver. Correctness only; the benchmark (`npm run bench cluster`) times them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { sideBySide } from "../../bench/cluster.ts";

test("the cluster benchmark at 30 VMs on 5 hosts: every VM gets a host and is Ready, every pod is bound, and the figures are read", async () => {
  const { vireo, scheduler } = await sideBySide({ hosts: 5, vms: 30 });
  assert.equal(vireo.placed, 30);
  assert.ok(vireo.readySeconds !== undefined && vireo.readySeconds >= vireo.placedSeconds);
  assert.equal(scheduler.placed, 30);
  for (const figures of [vireo, scheduler]) {
    assert.ok(figures.objectWrites >= 30, `at least one write per object: ${JSON.stringify(figures)}`);
    assert.ok(figures.watchEvents >= 0 && figures.cpuSeconds > 0 && figures.peakResidentMiB > 0 && figures.heapUsedMiB > 0, JSON.stringify(figures));
  }
});
