// The owner and lab gauges, read from the store at scrape time: VMs, vCPUs and memory by owner (only the
// owners declared, and gone with their last VM), the VMs nobody owns, labs by phase with every phase
// present, and each lab's next lease expiry — absent for a lab without one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ControllerMetrics, attachStoreGauges } from "../../controller/observe/metrics.ts";
import { ObjectStore } from "../../controller/sources/store.ts";
import type { LabPhase, LabTopology, VirtualMachine } from "../../controller/api/types.ts";
import { API_VERSION, LAB_LABEL } from "../../controller/api/types.ts";
import { vmObject } from "../support/objects.ts";

function vm(name: string, owner: string | undefined, size: { cpu: number; memoryGiB: number }, lab?: string): VirtualMachine {
  const object = vmObject(name, { ...size, ...(lab ? { labels: { [LAB_LABEL]: lab } } : {}) });
  if (owner) object.spec.owner = owner;
  return object;
}

function lab(name: string, phase: LabPhase, nextExpiry?: { time: string; action: "Stop" | "Delete" }): LabTopology {
  return {
    apiVersion: API_VERSION,
    kind: "LabTopology",
    metadata: { name, namespace: "qa", generation: 1 },
    spec: { owner: "qa-team", cluster: "lab", running: true, copies: 1, platforms: [], networks: [], tiers: [] },
    status: { phase, ...(nextExpiry ? { nextExpiry } : {}) },
  };
}

/** Every sample of `name` in the exposition, as "labels value" lines. */
function samples(text: string, name: string): string[] {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))].map((m) => `${m[1] ?? ""} ${m[2]}`).sort();
}

test("owners, unowned VMs, labs by phase and lease expiries are counted from the store at each scrape", async () => {
  const store = new ObjectStore();
  const metrics = new ControllerMetrics();
  attachStoreGauges(metrics, store, () => Date.parse("2026-11-24T12:00:00Z"));
  for (const object of [
    vm("db-0", "qa-team", { cpu: 4, memoryGiB: 8 }, "shop-stack"), vm("web-0", "qa-team", { cpu: 1, memoryGiB: 2 }, "shop-stack"), vm("tmp-1", "alice", { cpu: 2, memoryGiB: 4 }),
    vm("web-1", undefined, { cpu: 2, memoryGiB: 4 }), vm("web-2", undefined, { cpu: 2, memoryGiB: 4 }),
    lab("shop-stack", "Running", { time: "2026-11-24T20:00:00Z", action: "Stop" }), lab("perf", "Stopped", { time: "2026-11-27T12:00:00Z", action: "Delete" }), lab("old", "Expired"),
  ]) store.upsert(object);

  let text = await metrics.registry.metrics();
  assert.deepEqual(samples(text, "vireo_owner_vms"), ['owner="alice" 1', 'owner="qa-team" 2']);
  assert.deepEqual(samples(text, "vireo_owner_vcpus"), ['owner="alice" 2', 'owner="qa-team" 5']);
  assert.deepEqual(samples(text, "vireo_owner_memory_bytes"), [`owner="alice" ${4 * 1024 ** 3}`, `owner="qa-team" ${10 * 1024 ** 3}`]);
  assert.deepEqual(samples(text, "vireo_vms_without_owner"), [" 2"]);
  assert.deepEqual(samples(text, "vireo_labs"), ['phase="Expired" 1', 'phase="Pending" 0', 'phase="Running" 1', 'phase="Stalled" 0', 'phase="Starting" 0', 'phase="Stopped" 1', 'phase="Stopping" 0']);
  assert.deepEqual(samples(text, "vireo_lab_lease_expiry_timestamp_seconds"), [
    `namespace="qa",lab="perf",action="Delete" ${Date.parse("2026-11-27T12:00:00Z") / 1000}`,
    `namespace="qa",lab="shop-stack",action="Stop" ${Date.parse("2026-11-24T20:00:00Z") / 1000}`,
  ]);

  // alice's last VM goes, and so does her series; the unowned count follows the store.
  store.delete("VirtualMachine/default/tmp-1");
  store.upsert(vm("web-3", undefined, { cpu: 2, memoryGiB: 4 }));
  text = await metrics.registry.metrics();
  assert.deepEqual(samples(text, "vireo_owner_vms"), ['owner="qa-team" 2']);
  assert.deepEqual(samples(text, "vireo_vms_without_owner"), [" 3"]);
});
