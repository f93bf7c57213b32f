// Failover benchmark. Three figures:
//  1. Wall-clock time the HA planner takes to plan the restart of 2,000 VMs after 20 of 200 hosts fail
//     (aim: under 100 ms), beside a plain first-fit loop over the same VMs (the baseline).
//  3. Wall-clock time to compute a HostCluster's failover capacity (tolerates K, worst case) by re-placing
//     protected VMs, on 200 healthy hosts running 2,000 protected VMs, beside trying every single-host failure.
//  2. Simulated time from a host crash to Ready for each restart priority class, on the virtual clock,
//     against the floor (detection + lease expiry + boot) and the published figures of other platforms.

import { performance } from "node:perf_hooks";
import { HOST_LABEL } from "../controller/api/types.ts";
import type { RestartPriority } from "../controller/api/types.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../controller/placement/index.ts";
import { failoverCapacityReport, unplaceableAfter } from "../controller/planners/ha/failover-capacity.ts";
import { planFailover, type FailoverVm } from "../controller/planners/ha/restart-order.ts";
import type { Protection } from "../controller/planners/ha/protection.ts";
import { Scenario, clusterYaml, hostYaml, vmYaml } from "../test/support/scenario.ts";

const HOSTS = 200;
const FAILED = 20;
const VMS_PER_HOST = 100;
const TIMED_RUNS = 5;
const AIM_MS = 100;
const PRIORITIES: readonly RestartPriority[] = ["Highest", "Medium", "Low"];

function protection(priority: RestartPriority): Protection {
  return { protected: true, priority, readyCondition: "ResourcesAllocated", readyTimeoutMs: 600_000, startAfter: [], startDelayMs: 0, isolationResponse: "LeavePoweredOn", conflicts: [], replicate: false, faultTolerance: false };
}

function fleet(): { snapshot: ClusterSnapshot; vms: FailoverVm[] } {
  const hosts: CandidateHost[] = [];
  const placed: PlacedVm[] = [];
  const vms: FailoverVm[] = [];
  for (let h = 0; h < HOSTS; h++) {
    const name = `host-${String(h).padStart(3, "0")}`;
    const failed = h < FAILED;
    hosts.push({ name, labels: { [HOST_LABEL]: name, rack: `r${h % 10}` }, hypervisor: "esx", cpu: { cores: 64, vendor: "intel", features: ["avx2"], overcommitRatio: 4 }, memoryMiB: 1_048_576, datastores: ["shared"], networks: ["prod"], ...(failed ? { unavailable: "not ready" } : {}) });
    // Surviving hosts run 10 VMs each; each failed host ran 100 that now need a home.
    for (let v = 0; v < (failed ? VMS_PER_HOST : 10); v++) {
      const id = `ns/${name}-vm-${v}`;
      const request: VmRequest = { id, namespace: "ns", labels: { app: `a${v % 50}` }, cpu: 2, memoryMiB: 4096, cpuFeatures: [], datastores: ["shared"], networks: ["prod"], placement: { cluster: "prod" } };
      if (!failed) {
        placed.push({ id, namespace: "ns", labels: request.labels, host: name, cpu: 2, memoryMiB: 4096 });
        continue;
      }
      const priority = PRIORITIES[v % PRIORITIES.length]!;
      vms.push({ id, request, protection: protection(priority), need: { fromHost: name, reason: "HostFailure", failedAt: 0, safeAt: 0 } });
    }
  }
  return { snapshot: { hosts, placed, strategy: "Spread" }, vms };
}

/** 200 healthy hosts, 10 protected VMs each (2,000), for the failover capacity figure. */
function healthyFleet(): { snapshot: ClusterSnapshot; protectedVms: Map<string, VmRequest> } {
  const hosts: CandidateHost[] = [];
  const placed: PlacedVm[] = [];
  const protectedVms = new Map<string, VmRequest>();
  for (let h = 0; h < HOSTS; h++) {
    const name = `host-${String(h).padStart(3, "0")}`;
    hosts.push({ name, labels: { [HOST_LABEL]: name, rack: `r${h % 10}` }, hypervisor: "esx", cpu: { cores: 64, vendor: "intel", features: ["avx2"], overcommitRatio: 4 }, memoryMiB: 262_144, datastores: ["shared"], networks: ["prod"] });
    for (let v = 0; v < 10; v++) {
      const id = `ns/${name}-vm-${v}`;
      const request: VmRequest = { id, namespace: "ns", labels: { app: `a${v % 50}` }, cpu: 2 + (h % 3), memoryMiB: 4096 * (1 + (v % 4)), cpuFeatures: [], datastores: ["shared"], networks: ["prod"], placement: { cluster: "prod" } };
      protectedVms.set(id, request);
      placed.push({ id, namespace: "ns", labels: request.labels, host: name, cpu: request.cpu, memoryMiB: request.memoryMiB });
    }
  }
  return { snapshot: { hosts, placed, strategy: "Spread" }, protectedVms };
}

function benchFailoverCapacity(): void {
  const { snapshot, protectedVms } = healthyFleet();
  failoverCapacityReport(1, snapshot, protectedVms);
  const timed: number[] = [];
  let report = failoverCapacityReport(1, snapshot, protectedVms);
  for (let i = 0; i < TIMED_RUNS; i++) {
    const start = performance.now();
    report = failoverCapacityReport(1, snapshot, protectedVms);
    timed.push(performance.now() - start);
  }
  // The baseline: every single-host failure tried, which the bound avoids.
  const exhaustiveStart = performance.now();
  const stranding = snapshot.hosts.filter((host) => unplaceableAfter(snapshot, protectedVms, [host.name]).length > 0).length;
  const exhaustiveMs = performance.now() - exhaustiveStart;
  const ms = median(timed);
  console.log(`\nfailover capacity: ${HOSTS} hosts, ${protectedVms.size} protected VMs, HostFailuresToTolerate 1 (median of ${TIMED_RUNS})`);
  console.log(`  re-placement search  ${ms.toFixed(1).padStart(7)} ms   tolerates ${report.tolerates}, ${report.setsTried} failure sets re-placed (bound: 2 per size, up to 2 failures)   aim < ${AIM_MS} ms ${ms < AIM_MS ? "(met)" : "(MISSED)"}`);
  console.log(`  every single failure ${exhaustiveMs.toFixed(1).padStart(7)} ms   ${snapshot.hosts.length} sets re-placed, ${stranding} strand a VM (the unbounded search, for one failure only)`);
}

function firstFit(snapshot: ClusterSnapshot, vms: readonly FailoverVm[]): number {
  const free = new Map(snapshot.hosts.filter((h) => !h.unavailable).map((h) => [h.name, h.memoryMiB]));
  for (const p of snapshot.placed) free.set(p.host, (free.get(p.host) ?? 0) - p.memoryMiB);
  let placed = 0;
  for (const vm of vms) {
    for (const [host, memory] of free) {
      if (memory >= vm.request.memoryMiB) {
        free.set(host, memory - vm.request.memoryMiB);
        placed++;
        break;
      }
    }
  }
  return placed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function recoveryByPriority(): Promise<Map<string, number>> {
  let yaml = clusterYaml() + ["esx-01", "esx-02", "esx-03", "esx-04"].map((h) => hostYaml(h, { cores: 64, memoryMiB: 262144 })).join("");
  for (const priority of PRIORITIES) {
    yaml += `apiVersion: vireo.dev/v1alpha1\nkind: HAPolicy\nmetadata: {name: ${priority.toLowerCase()}, namespace: default}\nspec: {selector: {matchLabels: {tier: ${priority.toLowerCase()}}}, restartPriority: ${priority}, readyCondition: PoweredOn}\n---\n`;
    for (let i = 0; i < 10; i++) {
      yaml += vmYaml(`${priority.toLowerCase()}-${i}`, { labels: { tier: priority.toLowerCase() }, cpu: 1, memoryMiB: 2048 })
        .replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-01}}}]}}");
    }
  }
  const s = await Scenario.start(yaml);
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  await s.advance(7_300);
  const crashAt = s.clock.now();
  await s.sim.crashHost("esx-01");
  const readyAt = new Map<string, number>();
  await s.until(() => {
    for (const priority of PRIORITIES) {
      const tier = s.vms().filter((vm) => vm.metadata.labels?.["tier"] === priority.toLowerCase());
      if (!readyAt.has(priority) && tier.every((vm) => vm.status?.phase === "Running" && vm.status.host !== "esx-01" && vm.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"))) {
        readyAt.set(priority, s.clock.now() - crashAt);
      }
    }
    return readyAt.size === PRIORITIES.length;
  }, 600_000, 500);
  if (s.sim.splitBrainAttempts() !== 0) throw new Error(`split-brain attempts: ${s.sim.splitBrainAttempts()}`);
  await s.stop();
  return readyAt;
}

export async function benchFailover(): Promise<void> {
  const { snapshot, vms } = fleet();
  const input = { snapshot, vms, failoverHosts: [], attempts: new Map(), now: 1 };
  planFailover(input);
  const planned: number[] = [];
  let restarts = 0;
  for (let i = 0; i < TIMED_RUNS; i++) {
    const start = performance.now();
    restarts = planFailover(input).restarts.length;
    planned.push(performance.now() - start);
  }
  const baselineStart = performance.now();
  const baselinePlaced = firstFit(snapshot, vms);
  const baselineMs = performance.now() - baselineStart;
  const plan = median(planned);
  console.log(`\nfailover: planning the restart of ${vms.length} VMs after ${FAILED} of ${HOSTS} hosts fail (median of ${TIMED_RUNS})`);
  console.log(`  HA planner            ${plan.toFixed(1).padStart(7)} ms   ${restarts} restarts placed, priority order, rules and 32 power-ons/host held   aim < ${AIM_MS} ms ${plan < AIM_MS ? "(met)" : "(MISSED)"}`);
  console.log(`  first-fit baseline    ${baselineMs.toFixed(1).padStart(7)} ms   ${baselinePlaced} placed, no rules, no order`);

  benchFailoverCapacity();

  const readyAt = await recoveryByPriority();
  const s = new Scenario();
  const { bootMs, lockExpiryMs } = s.sim.timings;
  await s.stop();
  const detection = 15_000;
  const floor = Math.max(detection, lockExpiryMs) + bootMs;
  console.log(`\nfailover: simulated time from a host crash to Ready, 30 VMs in three priorities (readyCondition PoweredOn)`);
  console.log(`  floor: detection ${detection / 1000}s, lease expiry ≤ ${lockExpiryMs / 1000}s after the crash (overlapping), boot ${bootMs / 1000}s = ${floor / 1000}s for the first class`);
  for (const priority of PRIORITIES) {
    console.log(`  ${priority.padEnd(8)} Ready after ${((readyAt.get(priority) ?? Number.NaN) / 1000).toFixed(0).padStart(4)} s`);
  }
  console.log("  published: vSphere HA detects a failure in 15–18 s; Proxmox VE fails over in about 2 min; KubeVirt with node remediation about 9 min");
}
