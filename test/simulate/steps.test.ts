// Each kind of timeline entry does what a person at the keyboard would, on a small fleet: a workload change
// lifts the chosen guests' CPU use as the hosts report it, makes them dirty memory faster, and reaches a
// guest not yet started when it starts; a requested migration moves a VM live; a rolling
// maintenance that meets a host it cannot empty stops there and says why; a deletion removes a VM.

import { test } from "node:test";
import assert from "node:assert/strict";
import { parseScenario } from "../../controller/simulate/scenario.ts";
import { runScenario } from "../../controller/simulate/run.ts";
import type { RunResult } from "../../controller/simulate/run.ts";

/** Two hosts of 16 cores in cluster prod, and `vms` small steady VMs. */
function scenario(name: string, timeline: string, options: { duration?: string; vmExtra?: string } = {}): string {
  return `name: ${name}
duration: ${options.duration ?? "20m"}
sampleInterval: 10s
fleet:
  objects:
    - {apiVersion: vireo.dev/v1alpha1, kind: HostCluster, metadata: {name: prod}, spec: {hostSelector: {matchLabels: {vireo.dev/cluster: prod}}}}
  generate:
    - count: 2
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: Host
        metadata: {name: "esx-{index}", labels: {vireo.dev/cluster: prod}}
        spec: {hypervisor: esx, cpu: {cores: 16, vendor: intel, features: [], overcommitRatio: 4}, memoryMiB: 65536, datastores: [shared], networks: [prod]}
    - count: 2
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: VirtualMachine
        metadata: {name: "vm-{index}", namespace: shop, labels: {app: shop}}
        spec:
          cpu: 8
          memoryMiB: 4096
          disks: [{name: root, sizeGiB: 20, datastore: shared}]
          networks: [{name: prod}]
          placement: {cluster: prod${options.vmExtra ?? ""}}
          workload: {profile: Steady, cpuPercent: 10}
timeline:
${timeline}`;
}

async function run(text: string): Promise<RunResult> {
  return runScenario(parseScenario("steps.yaml", text));
}

/** Host CPU use (percent of cores) summed over the hosts, at the sample nearest `t`. */
function cpuAt(result: RunResult, t: number): number {
  const i = result.series.t.findIndex((x) => x >= t);
  return result.series.hosts.reduce((sum, h) => sum + (h.cpu[i] ?? 0), 0);
}

test("a workload change lifts the chosen guests' CPU use as their hosts report it, and their manifests say so", async () => {
  const result = await run(scenario("burst", "  - at: 10m\n    workload: {vms: [shop/vm-1], cpuPercent: 90}\n"));
  // vm-1 and vm-2 each use 10 % of 8 vCPUs (0.8 of 16 cores: 5 %) before; vm-1 uses 90 % (7.2 cores: 45 %) after.
  assert.equal(cpuAt(result, 5 * 60), 10);
  assert.equal(cpuAt(result, 15 * 60), 50);
  assert.ok(result.timeline.some((r) => r.kind === "step" && r.summary === "workload of shop/vm-1: 90% CPU"));
  assert.deepEqual(result.summary.recoveries, []);
});

test("a workload change makes the guest dirty its memory faster: a live migration after a burst copies more", async () => {
  const steady = await run(scenario("steady", "  - at: 5m\n    migrate: {vm: shop/vm-1}\n", { duration: "10m" }));
  const burst = await run(scenario("burst-then-move", "  - at: 2m\n    workload: {vms: [shop/vm-1], profile: Bursty}\n  - at: 5m\n    migrate: {vm: shop/vm-1}\n", { duration: "10m" }));
  const [before] = steady.summary.migrations;
  const [after] = burst.summary.migrations;
  assert.ok(before && after);
  assert.equal(before.phase, "Succeeded");
  assert.equal(after.phase, "Succeeded");
  // Steady dirties 24 MiB/s, Bursty 96 (core/migration.ts): the copy rounds re-send four times as much.
  assert.ok(after.transferredMiB > before.transferredMiB, `${after.transferredMiB} MiB after the burst, ${before.transferredMiB} MiB before`);
});

test("a guest not yet started when its workload changes starts with the new workload", async () => {
  // Both VMs must run on esx-2, which is in maintenance until 8m: they start only then.
  const pinned = ", hostAffinity: {required: [{matchExpressions: [{key: vireo.dev/host, operator: In, values: [esx-2]}]}]}";
  const timeline = "  - at: 0s\n    maintenance: {host: esx-2, enabled: true}\n  - at: 5m\n    workload: {vms: [shop/vm-1], cpuPercent: 90}\n  - at: 8m\n    maintenance: {host: esx-2, enabled: false}\n";
  const result = await run(scenario("late-start", timeline, { vmExtra: pinned }));
  assert.equal(cpuAt(result, 7 * 60), 0);
  // On esx-2 from 8m: vm-1 at 90 % of 8 vCPUs (7.2 cores) and vm-2 at 10 % (0.8): 8 of 16 cores.
  assert.equal(cpuAt(result, 15 * 60), 50);
});

test("a requested migration moves the VM live, with its pause at switch-over, and is recorded as requested", async () => {
  const result = await run(scenario("move", "  - at: 5m\n    migrate: {vm: shop/vm-1}\n"));
  const [migration, ...others] = result.summary.migrations;
  assert.deepEqual(others, []);
  assert.ok(migration);
  assert.equal(migration.vm, "shop/vm-1");
  assert.equal(migration.why, "Requested");
  assert.equal(migration.phase, "Succeeded");
  assert.notEqual(migration.target, migration.source);
  assert.ok(migration.startedAt >= 300 && migration.downtimeMs !== undefined && migration.downtimeMs < 1000);
  assert.ok(result.timeline.some((r) => r.kind === "state" && r.object === "VirtualMachineMigration/shop/t0-vm-1" && r.phase === "Succeeded"));
});

test("a rolling maintenance that meets a host it cannot empty stops there, brings it back and says which VM could not leave", async () => {
  // Both VMs must run on esx-1, so esx-1 cannot be emptied.
  const pinned = ", hostAffinity: {required: [{matchExpressions: [{key: vireo.dev/host, operator: In, values: [esx-1]}]}]}";
  const result = await run(scenario("stuck", "  - at: 1m\n    rollingMaintenance: {cluster: prod, hold: 2m, timeout: 5m}\n", { vmExtra: pinned }));
  const notes = result.timeline.filter((r) => r.kind === "note").map((r) => (r.kind === "note" ? r.message : ""));
  assert.equal(notes.length, 1, notes.join("\n"));
  assert.match(notes[0]!, /^rolling maintenance stopped: esx-1 did not empty within 5m \(shop\/vm-[12]: .+\)$/);
  const esx1 = result.series.hosts.find((h) => h.name === "esx-1")!;
  assert.ok(esx1.state.includes("Maintenance"));
  assert.equal(esx1.state.at(-1), "Up");
  assert.ok(!result.series.hosts.find((h) => h.name === "esx-2")!.state.includes("Maintenance"), "the rollout went on to esx-2");
  assert.deepEqual(result.summary.recoveries, []);
});

test("a deletion removes the VM from its host, and it is no longer one that should run", async () => {
  const result = await run(scenario("retire", "  - at: 5m\n    delete: {kind: VirtualMachine, names: [shop/vm-2]}\n", { duration: "10m" }));
  assert.equal(result.series.running.at(-1), 1);
  assert.equal(result.series.shouldRun.at(-1), 1);
  assert.equal(result.summary.vms.declared, 1);
  assert.deepEqual(result.summary.recoveries, []);
  assert.deepEqual(result.summary.notRunning, []);
});

test("a run draws no number from the process's Math.random: nothing in it is left unseeded", async () => {
  const original = Math.random;
  let draws = 0;
  Math.random = () => {
    draws++;
    return original();
  };
  try {
    await run(scenario("drawn", "  - at: 1m\n    fault: {type: HostCrash, host: esx-1, duration: 5m}\n  - at: 10m\n    migrate: {vm: shop/vm-1}\n"));
  } finally {
    Math.random = original;
  }
  assert.equal(draws, 0);
});
