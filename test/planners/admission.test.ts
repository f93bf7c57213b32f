// HA admission control and failover capacity as pure functions: each policy, and the edges (fewer than
// 3 hosts, no protected VMs, dedicated failover hosts, a VM only some hosts can take).

import { test } from "node:test";
import assert from "node:assert/strict";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { RestartPriority } from "../../controller/api/types.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../controller/placement/index.ts";
import {
  DEDICATED_FAILOVER_HOST,
  admissionEnforced,
  failoverCapacityCondition,
  ordinaryPlacementSnapshot,
  planAdmission,
  requiredFailures,
  type AdmissionControl,
  type AdmissionInput,
  type PowerOn,
} from "../../controller/planners/ha/admission.ts";
import { failoverCapacity, failoverCapacityReport, failureSets, unplaceableAfter } from "../../controller/planners/ha/failover-capacity.ts";

const GiB = 1024;

function host(name: string, memoryGiB = 16, options: { cores?: number; datastores?: string[]; unavailable?: string } = {}): CandidateHost {
  return {
    name,
    labels: { [HOST_LABEL]: name },
    hypervisor: "esx",
    cpu: { cores: options.cores ?? 16, vendor: "intel", features: [], overcommitRatio: 4 },
    memoryMiB: memoryGiB * GiB,
    datastores: options.datastores ?? ["shared"],
    networks: ["prod"],
    ...(options.unavailable ? { unavailable: options.unavailable } : {}),
  };
}

function request(id: string, memoryGiB = 4, options: { cpu?: number; datastore?: string } = {}): VmRequest {
  return { id: `default/${id}`, namespace: "default", labels: { app: id }, cpu: options.cpu ?? 2, memoryMiB: memoryGiB * GiB, cpuFeatures: [], datastores: [options.datastore ?? "shared"], networks: ["prod"], placement: { cluster: "prod" } };
}

/** A cluster whose VMs run where given; every VM listed is protected. */
function cluster(hosts: CandidateHost[], running: [VmRequest, string][]): { snapshot: ClusterSnapshot; protectedVms: Map<string, VmRequest> } {
  const placed: PlacedVm[] = running.map(([r, h]) => ({ id: r.id, namespace: r.namespace, labels: r.labels, host: h, cpu: r.cpu, memoryMiB: r.memoryMiB }));
  return { snapshot: { hosts, placed, strategy: "Spread" }, protectedVms: new Map(running.map(([r]) => [r.id, r])) };
}

function powerOn(r: VmRequest, priority: RestartPriority = "Medium", isProtected = true): PowerOn {
  return { request: r, priority, protected: isProtected };
}

const TOLERATE_ONE: AdmissionControl = { policy: "HostFailuresToTolerate", hostFailures: 1 };

function admission(overrides: Partial<AdmissionInput> & Pick<AdmissionInput, "snapshot" | "protectedVms" | "powerOns">): ReturnType<typeof planAdmission> {
  return planAdmission({ policy: TOLERATE_ONE, hostCount: overrides.snapshot.hosts.length, restartsAwaitingCapacity: 0, ...overrides });
}

test("three 16 GiB hosts with 8 GiB of protected VMs each survive one failure but not two", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a"), "h1"], [request("b"), "h1"], [request("c"), "h2"], [request("d"), "h2"], [request("e"), "h3"], [request("f"), "h3"]]);
  const found = failoverCapacity({ snapshot, protectedVms, maxFailures: 2 });
  assert.equal(found.tolerates, 1);
  assert.equal(found.worstCase?.length, 2, "the worst case names the two hosts whose loss strands a VM");
  assert.ok((found.unplaceable?.length ?? 0) > 0);
});

test("failover capacity is found by re-placement: a VM whose datastore only one other host sees strands when that host is lost too", () => {
  const hosts = [host("h1", 64, { datastores: ["shared", "local"] }), host("h2", 64, { datastores: ["shared", "local"] }), host("h3", 64)];
  const { snapshot, protectedVms } = cluster(hosts, [[request("pinned", 4, { datastore: "local" }), "h1"]]);
  // Slot arithmetic would say three roomy hosts tolerate two failures; the datastore says otherwise.
  assert.deepEqual(unplaceableAfter(snapshot, protectedVms, ["h1"]), []);
  assert.deepEqual(unplaceableAfter(snapshot, protectedVms, ["h1", "h2"]), ["default/pinned"]);
  const found = failoverCapacity({ snapshot, protectedVms, maxFailures: 2 });
  assert.equal(found.tolerates, 1);
  assert.deepEqual(found.worstCase, ["h1", "h2"]);
});

test("a cluster with no protected VMs tolerates as many failures as the search looks for", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], []);
  const found = failoverCapacity({ snapshot, protectedVms, maxFailures: 2 });
  assert.equal(found.tolerates, 2);
  assert.equal(found.worstCase, undefined);
});

test("a single host running a protected VM tolerates no failure, and names itself as the worst case", () => {
  const { snapshot, protectedVms } = cluster([host("h1")], [[request("a"), "h1"]]);
  const report = failoverCapacityReport(1, snapshot, protectedVms);
  assert.equal(report.tolerates, 0);
  assert.equal(report.required, 1);
  assert.deepEqual(report.worstCase, ["h1"]);
});

test("failure sets try the busiest hosts and the largest hosts; hosts already down are not counted", () => {
  const hosts = [host("big", 64), host("busy", 16), host("idle", 16), host("down", 128, { unavailable: "not ready" })];
  const { snapshot, protectedVms } = cluster(hosts, [[request("a", 8), "busy"], [request("b", 2), "big"]]);
  assert.deepEqual(failureSets(snapshot, protectedVms, 1), [["busy"], ["big"]]);
  assert.deepEqual(failureSets(snapshot, protectedVms, 2), [["big", "busy"]]);
});

test("HostFailuresToTolerate admits the power-ons that keep one failure survivable, and refuses the rest saying by how much", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a", 8), "h1"], [request("b", 8), "h2"]]);
  // 48 GiB in all; one failure leaves 32 GiB for 16 GiB running and 6 GiB per power-on: two fit, a third does not.
  const plan = admission({ snapshot, protectedVms, powerOns: ["n1", "n2", "n3", "n4"].map((n) => powerOn(request(n, 6))) });
  assert.equal(plan.enforced, true);
  assert.deepEqual(plan.admitted, ["default/n1", "default/n2"]);
  assert.deepEqual(plan.refused.map((r) => r.vm), ["default/n3", "default/n4"]);
  assert.match(plan.refused[0]!.message, /HostFailuresToTolerate 1\): with it running the cluster would tolerate 0 host failures, 1 short — losing h\d would leave \d+ protected VMs? \(\d+ MiB, \d+ vCPUs\) without a host/);
  // n4 is of the same priority as n3: it is judged on its own merits, not held behind n3.
  assert.match(plan.refused[1]!.message, /with it running the cluster would tolerate 0 host failures/);
  assert.equal(plan.refused[1]!.behind, undefined);
});

test("admission serves the highest restart priority first, then the batch order", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a", 8), "h1"], [request("b", 8), "h2"]]);
  const powerOns = [powerOn(request("low-1", 6), "Low"), powerOn(request("low-2", 6), "Low"), powerOn(request("top-1", 6), "Highest"), powerOn(request("top-2", 6), "Highest")];
  const plan = admission({ snapshot, protectedVms, powerOns });
  assert.deepEqual(plan.admitted, ["default/top-1", "default/top-2"]);
  assert.deepEqual(plan.refused.map((r) => r.vm), ["default/low-1", "default/low-2"]);
  assert.deepEqual(admission({ snapshot, protectedVms, powerOns: [...powerOns] }), plan, "the same inputs give the same plan");
});

test("a cluster already short of failover capacity admits nothing, and says the cluster is short now", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a", 12), "h1"], [request("b", 12), "h2"], [request("c", 12), "h3"]]);
  const plan = admission({ snapshot, protectedVms, powerOns: [powerOn(request("tiny", 1), "Highest", false)] });
  assert.deepEqual(plan.admitted, []);
  assert.match(plan.refused[0]!.message, /the cluster tolerates 0 host failures, 1 short/);
});

test("an unprotected power-on is gated too: it takes room the protected VMs of a failed host would need", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("db", 8), "h1"]]);
  const withScratch: ClusterSnapshot = { ...snapshot, placed: [...snapshot.placed, { id: "default/scratch", namespace: "default", labels: {}, host: "h2", cpu: 2, memoryMiB: 12 * GiB }] };
  // Spread puts the batch VM on h3; then no host has the 8 GiB db needs if h1 fails.
  const plan = admission({ snapshot: withScratch, protectedVms, powerOns: [powerOn(request("batch", 12), "Medium", false)] });
  assert.deepEqual(plan.admitted, []);
  assert.match(plan.refused[0]!.message, /losing h1 would leave 1 protected VM \(8192 MiB, 2 vCPUs\) without a host/);
});

test("HA restarts waiting for capacity come first: no power-on is admitted while they wait", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], []);
  const plan = admission({ snapshot, protectedVms, powerOns: [powerOn(request("n1"))], restartsAwaitingCapacity: 2 });
  assert.deepEqual(plan.admitted, []);
  assert.match(plan.refused[0]!.message, /2 HA restarts wait for capacity/);
});

test("with fewer than 3 hosts in service admission control gates nothing, but failover capacity is still reported", () => {
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2")], [[request("a", 12), "h1"], [request("b", 12), "h2"]]);
  const plan = admission({ snapshot, protectedVms, powerOns: [powerOn(request("n1", 2))] });
  assert.deepEqual(plan, { admitted: ["default/n1"], refused: [], enforced: false });
  assert.equal(admissionEnforced(TOLERATE_ONE, 2), false);
  assert.equal(admissionEnforced(TOLERATE_ONE, 3), true);
  const report = failoverCapacityReport(1, snapshot, protectedVms);
  assert.equal(report.tolerates, 0);
  const condition = failoverCapacityCondition(TOLERATE_ONE, report, snapshot, 2);
  assert.equal(condition?.status, false);
  assert.match(condition?.message ?? "", /not enforced with fewer than 3 hosts/);
});

test("ReservedPercentage checks CPU and memory separately: plenty of memory does not excuse CPU", () => {
  const policy: AdmissionControl = { policy: "ReservedPercentage", cpuPercent: 25, memoryPercent: 25 };
  // Three hosts of 8 cores × 4 = 32 vCPUs (96 in all) and 64 GiB: 72 vCPUs may be reserved, 144 GiB.
  const { snapshot, protectedVms } = cluster([host("h1", 64, { cores: 8 }), host("h2", 64, { cores: 8 }), host("h3", 64, { cores: 8 })], [[request("a", 4, { cpu: 24 }), "h1"], [request("b", 4, { cpu: 24 }), "h2"]]);
  const plan = planAdmission({ policy, snapshot, protectedVms, hostCount: 3, restartsAwaitingCapacity: 0, powerOns: [powerOn(request("fits", 4, { cpu: 24 })), powerOn(request("breaks", 4, { cpu: 8 }))] });
  assert.deepEqual(plan.admitted, ["default/fits"]);
  assert.match(plan.refused[0]!.message, /ReservedPercentage cpu 25%, memory 25%\): with it running 16\.7% of cpu free, below 25% \(8 vCPUs short\)/);
  assert.doesNotMatch(plan.refused[0]!.message, /of memory free/);
});

test("ReservedPercentage reports the cluster's free share in its condition", () => {
  const policy: AdmissionControl = { policy: "ReservedPercentage", cpuPercent: 20, memoryPercent: 50 };
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a", 32), "h1"]]);
  const report = failoverCapacityReport(requiredFailures(policy), snapshot, protectedVms);
  const condition = failoverCapacityCondition(policy, report, snapshot, 3);
  assert.equal(condition?.status, false);
  assert.equal(condition?.reason, "InsufficientFailoverCapacity");
  assert.match(condition?.message ?? "", /33\.3% of memory free, below 50%/);
});

test("dedicated failover hosts take no ordinary placement, but count for failover capacity", () => {
  const policy: AdmissionControl = { policy: "DedicatedFailoverHosts", failoverHosts: ["spare"] };
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("spare")], [[request("a", 12), "h1"], [request("b", 12), "h2"]]);
  const ordinary = ordinaryPlacementSnapshot(snapshot, policy);
  assert.equal(ordinary.hosts.find((h) => h.name === "spare")?.unavailable, DEDICATED_FAILOVER_HOST);
  assert.equal(admissionEnforced(policy, 3), false, "the policy keeps the hosts free; it does not refuse power-ons");
  const report = failoverCapacityReport(requiredFailures(policy), snapshot, protectedVms);
  assert.equal(report.required, 1);
  assert.equal(report.tolerates, 1, "either busy host's VM restarts on the spare; losing two strands one");
  assert.equal(failoverCapacityCondition(policy, report, snapshot, 3)?.status, true);
});

test("the Disabled policy admits everything and sets no condition", () => {
  const policy: AdmissionControl = { policy: "Disabled" };
  const { snapshot, protectedVms } = cluster([host("h1"), host("h2"), host("h3")], [[request("a", 16), "h1"], [request("b", 16), "h2"], [request("c", 16), "h3"]]);
  const plan = planAdmission({ policy, snapshot, protectedVms, hostCount: 3, restartsAwaitingCapacity: 0, powerOns: [powerOn(request("n"))] });
  assert.deepEqual(plan.admitted, ["default/n"]);
  assert.equal(requiredFailures(policy), undefined);
  assert.equal(failoverCapacityCondition(policy, failoverCapacityReport(undefined, snapshot, protectedVms), snapshot, 3), undefined);
});

test("HostFailuresToTolerate 2 needs two failures survivable; the report searches one further", () => {
  const policy: AdmissionControl = { policy: "HostFailuresToTolerate", hostFailures: 2 };
  const hosts = ["h1", "h2", "h3", "h4"].map((n) => host(n, 16));
  const { snapshot, protectedVms } = cluster(hosts, [[request("a", 4), "h1"], [request("b", 4), "h2"]]);
  const report = failoverCapacityReport(2, snapshot, protectedVms);
  assert.equal(report.tolerates, 3, "losing any three leaves one host that takes both VMs: more than required");
  assert.match(failoverCapacityCondition(policy, report, snapshot, 4)?.message ?? "", /tolerates more than 2 host failures/);
  // Two failures leave 32 GiB: the 8 GiB running and six 4 GiB power-ons; the seventh waits.
  const names = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"];
  const plan = planAdmission({ policy, snapshot, protectedVms, hostCount: 4, restartsAwaitingCapacity: 0, powerOns: names.map((n) => powerOn(request(n, 4))) });
  assert.deepEqual(plan.admitted, names.slice(0, 6).map((n) => `default/${n}`));
  assert.deepEqual(plan.refused.map((r) => r.vm), ["default/n7"]);
  assert.match(plan.refused[0]!.message, /HostFailuresToTolerate 2\): with it running the cluster would tolerate 1 host failure, 1 short/);
});
