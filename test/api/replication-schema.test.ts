// Replication and disaster recovery as the file mode applies them: a VM's replication, a cluster's
// replication link, partitions that cut off storage and RecoveryPlans are defaulted as the CRDs say, and
// mistakes are refused with the field path the API server would name.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { load } from "js-yaml";
import { formatFieldErrors, kindForResource, validateManifest } from "../../controller/api/schema.ts";
import { parseManifestFile } from "../../controller/sources/files/manifests.ts";
import type { Fault, HostCluster, RecoveryPlan, RecoveryPlanStatus, VirtualMachine, VmReplicationStatus } from "../../controller/api/types.ts";
import { accepted, changed, refusedAt, type Doc } from "../support/admission.ts";

const VM = `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: db-1, namespace: shop}
spec:
  cpu: 4
  memoryMiB: 16384
  networks: [{name: prod}, {name: backup}]
  placement: {cluster: prod}
  workload: {profile: Steady, cpuPercent: 30, diskWriteRateMiBps: 2.5}
  replication:
    targetCluster: dr
    rpoSeconds: 900
    instances: 3
    networkMapping: [{source: prod, target: dr-prod}]
    keepMacAddresses: false
`;

const PLAN = `apiVersion: vireo.dev/v1alpha1
kind: RecoveryPlan
metadata: {name: shop-dr, namespace: shop}
spec:
  selector: {matchLabels: {app: shop}}
  action: Test
  networkMapping: [{source: prod, target: dr-prod}]
  testNetwork: dr-bubble
  testDurationSeconds: 3600
`;


describe("a VM's replication", () => {
  it("is accepted as written", () => {
    const vm = accepted<VirtualMachine>(load(VM));
    assert.deepEqual(vm.spec.replication, { targetCluster: "dr", rpoSeconds: 900, instances: 3, networkMapping: [{ source: "prod", target: "dr-prod" }], keepMacAddresses: false });
    assert.equal(vm.spec.workload?.diskWriteRateMiBps, 2.5);
  });

  it("defaults to a 4 h RPO, no extra instances, no network mapping and the same MAC addresses", () => {
    const vm = accepted<VirtualMachine>(changed(VM, (d) => { d.spec.replication = { targetCluster: "dr" }; }));
    assert.deepEqual(vm.spec.replication, { targetCluster: "dr", rpoSeconds: 14400, instances: 0, networkMapping: [], keepMacAddresses: true });
  });

  it("refuses an RPO under 5 minutes", () => refusedAt(changed(VM, (d) => { d.spec.replication.rpoSeconds = 299; }), "spec.replication.rpoSeconds", "Invalid value: 299: spec.replication.rpoSeconds in body should be greater than or equal to 300"));
  it("refuses an RPO over 24 hours", () => refusedAt(changed(VM, (d) => { d.spec.replication.rpoSeconds = 86401; }), "spec.replication.rpoSeconds", "Invalid value: 86401: spec.replication.rpoSeconds in body should be less than or equal to 86400"));
  it("refuses more than 24 instances", () => refusedAt(changed(VM, (d) => { d.spec.replication.instances = 25; }), "spec.replication.instances", "should be less than or equal to 24"));
  it("refuses a fractional RPO", () => refusedAt(changed(VM, (d) => { d.spec.replication.rpoSeconds = 900.5; }), "spec.replication.rpoSeconds", "must be of type integer"));
  it("refuses an empty target cluster", () => refusedAt(changed(VM, (d) => { d.spec.replication.targetCluster = ""; }), "spec.replication.targetCluster", "should be at least 1 chars long"));
  it("refuses replication without a target cluster", () => refusedAt(changed(VM, (d) => { delete d.spec.replication.targetCluster; }), "spec.replication.targetCluster", "Required value"));

  it("refuses replication into the VM's own cluster", () =>
    refusedAt(changed(VM, (d) => { d.spec.replication.targetCluster = "prod"; }), "spec.replication.targetCluster", "Invalid value: replication.targetCluster must differ from placement.cluster"));

  it("refuses a mapping of a network the VM does not have", () =>
    refusedAt(changed(VM, (d) => { d.spec.replication.networkMapping.push({ source: "lab", target: "dr-lab" }); }), "spec.replication.networkMapping", "every replication.networkMapping source must name one of the VM's networks"));

  it("refuses two mappings of the same network", () =>
    refusedAt(changed(VM, (d) => { d.spec.replication.networkMapping.push({ source: "prod", target: "dr-other" }); }), "spec.replication.networkMapping[1]", 'Duplicate value: {"source":"prod"}'));

  it("refuses a mapping without a target", () =>
    refusedAt(changed(VM, (d) => { d.spec.replication.networkMapping = [{ source: "prod" }]; }), "spec.replication.networkMapping[0].target", "Required value"));

  it("refuses a negative disk write rate", () => refusedAt(changed(VM, (d) => { d.spec.workload.diskWriteRateMiBps = -1; }), "spec.workload.diskWriteRateMiBps", "greater than or equal to 0"));

  it("declares in the CRD every field of the replication status", () => {
    const replication: Required<VmReplicationStatus> = {
      state: "FailedOver", targetCluster: "dr", datastore: "dr-ds1", rpoSeconds: 900,
      lastSyncTime: "2026-11-24T10:00:00Z", lastSyncDurationSeconds: 12.5, lastSyncMiB: 340.2, nextSyncTime: "2026-11-24T10:15:00Z",
      lagSeconds: 61, rpoViolated: false, instances: ["2026-11-24T09:45:00Z", "2026-11-24T10:00:00Z"],
      failover: {
        kind: "Failover", fromCluster: "prod", toCluster: "dr", host: "esx-dr-01", instanceTime: "2026-11-24T10:00:00Z",
        time: "2026-11-24T10:05:00Z", dataLossSeconds: 240, dataLossMiB: 600,
      },
    };
    accepted(changed(VM, (d) => { d.status = { phase: "Running", replication }; }));
    refusedAt(changed(VM, (d) => { d.status = { replication: { ...replication, lag: 5 } }; }), "status.replication.lag", "field not declared in schema");
  });
});

describe("a cluster's replication link", () => {
  const CLUSTER = "apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: prod}\nspec: {hostSelector: {matchLabels: {vireo.dev/cluster: prod}}}\n";

  it("defaults to 100 MiB/s", () => {
    assert.deepEqual(accepted<HostCluster>(load(CLUSTER)).spec.replication, { bandwidthMiBps: 100 });
    assert.deepEqual(accepted<HostCluster>(changed(CLUSTER, (d) => { d.spec.replication = {}; })).spec.replication, { bandwidthMiBps: 100 });
  });

  it("accepts a fraction of a MiB/s", () => {
    assert.equal(accepted<HostCluster>(changed(CLUSTER, (d) => { d.spec.replication = { bandwidthMiBps: 0.5 }; })).spec.replication.bandwidthMiBps, 0.5);
  });

  it("refuses no bandwidth at all", () =>
    refusedAt(changed(CLUSTER, (d) => { d.spec.replication = { bandwidthMiBps: 0 }; }), "spec.replication.bandwidthMiBps", "Invalid value: 0: spec.replication.bandwidthMiBps in body should be greater than 0"));
});

describe("a partition that cuts off storage", () => {
  const PARTITION = "apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: site-a}\nspec: {type: NetworkPartition, target: {hosts: [esx-01, esx-02], includeStorage: true}}\n";

  it("is accepted for a NetworkPartition", () => {
    assert.equal(accepted<Fault>(load(PARTITION)).spec.target.includeStorage, true);
  });

  it("is refused for any other fault", () =>
    refusedAt(changed(PARTITION, (d) => { d.spec.type = "NetworkIsolation"; d.spec.target = { host: "esx-01", includeStorage: true }; }), "spec.target.includeStorage", "Forbidden: target.includeStorage may only be set for NetworkPartition"));
});

describe("RecoveryPlan", () => {
  it("is known by its plural, singular, kind and short name", () => {
    for (const name of ["recoveryplans", "recoveryplan", "RecoveryPlan", "rp", "recoveryplans.vireo.dev"]) assert.equal(kindForResource(name), "RecoveryPlan", name);
  });

  it("is accepted in a manifest file, as the file mode reads it", () => {
    const parsed = parseManifestFile("dr.yaml", PLAN);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    const plan = parsed.documents[0]!.object as RecoveryPlan;
    assert.equal(plan.kind, "RecoveryPlan");
    assert.deepEqual(plan.spec, { selector: { matchLabels: { app: "shop" } }, action: "Test", networkMapping: [{ source: "prod", target: "dr-prod" }], testNetwork: "dr-bubble", testDurationSeconds: 3600 });
  });

  it("defaults to no network mapping and the default namespace", () => {
    const plan = accepted<RecoveryPlan>(load("apiVersion: vireo.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {name: p}\nspec: {selector: {}, action: Failover}\n"));
    assert.deepEqual(plan.spec, { selector: {}, action: "Failover", networkMapping: [] });
    assert.equal(plan.metadata.namespace, "default");
  });

  it("refuses a plan without a selector", () => refusedAt(changed(PLAN, (d) => { delete d.spec.selector; }), "spec.selector", "Required value"));
  it("refuses a plan without an action", () => refusedAt(changed(PLAN, (d) => { delete d.spec.action; }), "spec.action", "Required value"));
  it("refuses an unknown action", () => refusedAt(changed(PLAN, (d) => { d.spec.action = "Reprotect"; }), "spec.action", 'Unsupported value: "Reprotect": supported values: "Failover", "Migrate", "Test", "Failback"'));
  it("refuses a Test without a test network", () =>
    refusedAt(changed(PLAN, (d) => { delete d.spec.testNetwork; }), "spec.testNetwork", "Required value: testNetwork is required when action is Test"));
  it("refuses a test network for a Failover", () =>
    refusedAt(changed(PLAN, (d) => { d.spec.action = "Failover"; delete d.spec.testDurationSeconds; }), "spec.testNetwork", "Forbidden: testNetwork may only be set when action is Test"));
  it("refuses a test duration for a Migrate", () =>
    refusedAt(changed(PLAN, (d) => { d.spec.action = "Migrate"; delete d.spec.testNetwork; }), "spec.testDurationSeconds", "Forbidden: testDurationSeconds may only be set when action is Test"));
  it("refuses a test shorter than a minute", () => refusedAt(changed(PLAN, (d) => { d.spec.testDurationSeconds = 59; }), "spec.testDurationSeconds", "greater than or equal to 60"));
  it("refuses two mappings of the same network", () =>
    refusedAt(changed(PLAN, (d) => { d.spec.networkMapping.push({ source: "prod", target: "elsewhere" }); }), "spec.networkMapping[1]", 'Duplicate value: {"source":"prod"}'));

  it("declares in the CRD every field of its status", () => {
    const status: Required<RecoveryPlanStatus> = {
      observedGeneration: 2, phase: "Running", step: "WaitingForReadiness", message: "2 of 3 VMs ready",
      startTime: "2026-11-24T10:00:00Z", completionTime: "2026-11-24T10:09:00Z",
      vms: [{
        vm: "shop/db-1", result: "Recovered", copy: "db-1-test", host: "esx-dr-01", cluster: "dr", instanceTime: "2026-11-24T09:45:00Z",
        dataLossSeconds: 900, dataLossMiB: 2250, recoveryTimeSeconds: 140, message: "ready",
      }],
      conditions: [{ type: "Ready", status: "False", reason: "Running", message: "", lastTransitionTime: "2026-11-24T10:00:00Z", observedGeneration: 2 }],
    };
    accepted(changed(PLAN, (d) => { d.status = status; }));
    refusedAt(changed(PLAN, (d) => { d.status = { ...status, vmsReady: 2 }; }), "status.vmsReady", "field not declared in schema");
  });
});
