// A RecoveryPlan, the declarative Site Recovery Manager: which replicated VMs it recovers, how (Failover,
// Migrate, Test, Failback), and how far each got. Pure: (plan, its VMs as observed, the target sites,
// now) -> the plan's status and the actions of this round. The recovery itself — placement, restart
// order, fencing by lease — is the target cluster's restart stage's; a plan releases each VM to it
// (result Starting) once its own steps are done, and the VM's role follows (replication/role.ts).
//
//   Failover  the original is powered off where its host still answers, then released (unplanned)
//   Migrate   shut down, final sync, released: nothing is lost (planned)
//   Test      a copy of each replica on an isolated test network with new MACs; production untouched
//   Failback  reverse replication home, then shut down, final sync, released home

import type {
  HostPhase, NetworkMapping, RecoveryPlan, RecoveryPlanPhase, RecoveryPlanStatus, RecoveryPlanVmStatus, RecoveryStep, RecoveryVmResult, VirtualMachine,
} from "../../api/types.ts";
import { findCondition, summarize } from "../../api/conditions.ts";
import type { VmConfig, VmObservation } from "../../core/observation.ts";
import type { ReplicaObservation } from "../../core/replication.ts";
import { placeBatch, requestOf } from "../../placement/index.ts";
import type { ClusterSnapshot } from "../../placement/index.ts";
import type { Action } from "../actions.ts";
import { desiredConfig } from "../lifecycle.ts";
import { mappingOf, recoveryMac, type ReplicaRole } from "../replication/role.ts";
import { placedVm } from "../ha/restart-order.ts";
import type { ReplicaSite } from "../replication/settings.ts";

/** The `managedBy` of a test copy: Vireo's, but no VirtualMachine declares it; its RecoveryPlan owns it. */
export const TEST_COPY_MANAGED_BY = "vireo.dev/recoveryplan";

/** One VM the plan selects, as it stands. */
export interface PlanVm {
  id: string;
  vm: Readonly<VirtualMachine>;
  role: ReplicaRole;
  replica?: Readonly<ReplicaObservation>;
  instance?: Readonly<VmObservation>;
  instanceHostPhase?: HostPhase;
  /** The instance's host is silent and its storage cannot be read: failed or cut off, only a person can tell. */
  instanceHostUnconfirmed?: boolean;
  instanceCluster?: string;
  /** Test: the copy, as its host reports it. */
  copy?: Readonly<VmObservation>;
}

export interface RecoveryPlanSituation {
  plan: Readonly<RecoveryPlan>;
  vms: readonly PlanVm[];
  /** The clusters VMs recover into, by name: their networks and datastores. */
  sites: ReadonlyMap<string, ReplicaSite>;
  /** Test: the clusters the copies start in, as placement sees them. */
  snapshots: ReadonlyMap<string, ClusterSnapshot>;
  now: number;
}

export interface RecoveryOutcome {
  status: RecoveryPlanStatus;
  actions: Action[];
  /** Test: the copies to remove now (cleanup). */
  wakeAt?: number;
}

/** The name of the test copy of VM `name` made by a plan. */
export function testCopyName(vm: string): string {
  return `${vm}-test`;
}

export function planRecovery(s: Readonly<RecoveryPlanSituation>): RecoveryOutcome {
  const { plan, now } = s;
  const generation = plan.metadata.generation;
  const previous = plan.status?.observedGeneration === generation ? plan.status : undefined;
  const startTime = previous?.startTime ?? iso(now);
  const ended = previous?.phase === "Failed" || (previous?.phase === "Succeeded" && plan.spec.action !== "Test");
  if (ended) return { status: withConditions(plan, previous!, now), actions: [] };

  // Checked before anything starts: a plan that cannot be carried out touches nothing.
  if (!previous?.vms) {
    const refusal = refusalOf(s);
    if (refusal) return { status: withConditions(plan, { observedGeneration: generation, phase: "Failed", message: refusal.message, startTime, completionTime: iso(now), vms: [] }, now, refusal.reason), actions: [] };
  }

  const actions: Action[] = [];
  // Test copies take room: each is placed beside those placed before it this round.
  const snapshots = new Map(s.snapshots);
  const key = `${plan.metadata.uid ?? `${plan.metadata.namespace ?? "default"}/${plan.metadata.name}`}/${generation ?? 0}`;
  const results = s.vms.map((v) => {
    const before = previous?.vms?.find((r) => r.vm === v.id);
    switch (plan.spec.action) {
      case "Failover": return failover(v, before, actions);
      case "Migrate": return migrate(v, before, key, actions);
      case "Failback": return failback(v, before, key, actions);
      case "Test": return test(s, snapshots, v, before, actions);
    }
  });
  for (const r of results) withLoss(r, s.vms.find((v) => v.id === r.vm)!, startTime);
  const status = summarizePlan(plan, results, startTime, now);
  return { status: withConditions(plan, status, now), actions, ...testCleanupWake(s, status) };
}

// ---------------------------------------------------------------- refusals

function refusalOf(s: Readonly<RecoveryPlanSituation>): { reason: string; message: string } | undefined {
  const { plan } = s;
  if (s.vms.length === 0) return { reason: "NoVMsSelected", message: `the selector selects no VirtualMachine in namespace ${plan.metadata.namespace ?? "default"}` };
  const unreplicated = s.vms.filter((v) => !v.vm.spec.replication).map((v) => v.id);
  if (unreplicated.length > 0) return { reason: "NotReplicated", message: `not replicated (no spec.replication): ${unreplicated.join(", ")}` };
  for (const v of s.vms) {
    const cluster = targetOf(plan, v.vm);
    const site = s.sites.get(cluster);
    if (!site?.cluster) return { reason: "TargetClusterMissing", message: `VM ${v.id} recovers into HostCluster ${cluster}, which does not exist` };
    for (const network of networksAt(plan, v.vm)) {
      if (!site.networks.has(network.target)) {
        return { reason: "NetworkMappingUnmet", message: `VM ${v.id}: network ${network.target} (for its NIC on ${network.source}) is on no host of cluster ${cluster} that takes VMs` };
      }
    }
  }
  return undefined;
}

/** The cluster the plan's action brings the VM to. */
function targetOf(plan: Readonly<RecoveryPlan>, vm: Readonly<VirtualMachine>): string {
  return plan.spec.action === "Failback" ? vm.spec.placement.cluster : vm.spec.replication!.targetCluster;
}

/** The network each of the VM's NICs joins where the plan brings it. */
function networksAt(plan: Readonly<RecoveryPlan>, vm: Readonly<VirtualMachine>): NetworkMapping[] {
  if (plan.spec.action === "Failback") return vm.spec.networks.map((n) => ({ source: n.name, target: n.name }));
  if (plan.spec.action === "Test") return vm.spec.networks.map((n) => ({ source: n.name, target: plan.spec.testNetwork ?? "" }));
  const mapped = new Map(mappingOf(vm, [{ name: "", action: plan.spec.action, active: true, networkMapping: plan.spec.networkMapping ?? [] }]).map((m) => [m.source, m.target]));
  return vm.spec.networks.map((n) => ({ source: n.name, target: mapped.get(n.name) ?? n.name }));
}

// ---------------------------------------------------------------- the actions, VM by VM

type Result = RecoveryPlanVmStatus;

const ANSWERS: ReadonlySet<HostPhase | undefined> = new Set(["Ready", "EnteringMaintenance", "Maintenance"]);

function result(v: PlanVm, outcome: RecoveryVmResult, message: string, extra: Partial<Result> = {}): Result {
  return { vm: v.id, result: outcome, message, ...extra };
}

/** Arrived where the plan brings it: Recovered once it runs Ready there, Starting until then. */
function arrived(v: PlanVm, cluster: string): Result {
  const ready = v.vm.status?.phase === "Running" && findCondition(v.vm.status.conditions, "Ready")?.status === "True";
  const where = { host: v.instance!.host, cluster };
  return ready ? result(v, "Recovered", `running on host ${v.instance!.host} in cluster ${cluster}`, where) : result(v, "Starting", `starting on host ${v.instance!.host} in cluster ${cluster}`, where);
}

function failover(v: PlanVm, before: Result | undefined, actions: Action[]): Result {
  const target = v.vm.spec.replication!.targetCluster;
  if (v.instanceCluster === target) return arrived(v, target);
  if (before?.result === "Starting") return result(v, "Starting", before.message ?? "released to the target cluster");
  if (!v.replica?.lastSync) return result(v, "Failed", "its replica has no completed sync to recover from");
  const on = v.instance !== undefined && v.instance.power !== "Off";
  if (on && ANSWERS.has(v.instanceHostPhase)) {
    actions.push({ type: "Stop", vm: v.id, mode: "PowerOff", reason: "unplanned failover: the original is powered off before its replica starts" });
    return result(v, "Fencing", `powering off the original on host ${v.instance!.host}`);
  }
  if (on && v.instanceHostUnconfirmed) {
    return result(v, "Starting", `host ${v.instance!.host} cannot be seen, nor its storage read: this Failover is taken as the word that it is down; released to cluster ${target} once its lease has expired`);
  }
  if (on && v.instanceHostPhase !== "Failed") {
    return result(v, "Fencing", `the original on host ${v.instance!.host} is ${v.instanceHostPhase ?? "unknown"}: it may still run and write, so its replica waits until it is fenced`);
  }
  return result(v, "Starting", `released to cluster ${target}: it starts from its replica once its original's lease has expired`);
}

function migrate(v: PlanVm, before: Result | undefined, key: string, actions: Action[]): Result {
  const target = v.vm.spec.replication!.targetCluster;
  if (v.instanceCluster === target) return arrived(v, target);
  if (before?.result === "Starting") return result(v, "Starting", before.message ?? "released to the target cluster");
  return finalSync(v, key, actions, target, `cluster ${target}`);
}

function failback(v: PlanVm, before: Result | undefined, key: string, actions: Action[]): Result {
  const home = v.vm.spec.placement.cluster;
  if (v.instanceCluster === home) return arrived(v, home);
  if (before?.result === "Starting") return result(v, "Starting", before.message ?? "released home");
  const reverse = v.replica && v.replica.state !== "FailedOver" && v.replica.settings.link.endsWith(`->${home}`) ? v.replica : undefined;
  if (!reverse || reverse.lastSync === undefined) {
    const progress = reverse?.syncing ? `: ${Math.round(reverse.syncing.sentMiB)} of ${Math.round(reverse.syncing.totalMiB)} MiB` : "";
    return result(v, "Pending", `replicating back to cluster ${home} before the move home${progress}`);
  }
  // Syncing holds the VM where it is: only then may it be shut down, so nothing restarts it there meanwhile.
  if (before?.result !== "Syncing" && before?.result !== "Fencing") return result(v, "Syncing", "the reverse replica is ready: shutting down for the final sync");
  return finalSync(v, key, actions, home, `cluster ${home}`);
}

/** Planned: shut down, one last sync of what was written until then, then released — nothing lost. */
function finalSync(v: PlanVm, key: string, actions: Action[], cluster: string, where: string): Result {
  if (v.instance && v.instance.power !== "Off") {
    if (!ANSWERS.has(v.instanceHostPhase)) return result(v, "Failed", `host ${v.instance.host} is ${v.instanceHostPhase ?? "unknown"}: a planned migration needs the VM's host to answer; use a Failover`);
    if (v.instance.power !== "Stopping") actions.push({ type: "Stop", vm: v.id, mode: "Shutdown", reason: `planned migration to ${where}: shut down before the final sync` });
    return result(v, "Fencing", `shutting down on host ${v.instance.host} before the final sync`);
  }
  if (!v.replica || v.replica.state === "FailedOver") return result(v, "Failed", "it has no replica to sync");
  if (v.replica.lastSync?.key === key) return result(v, "Starting", `final sync done: released to ${where}`, { cluster });
  actions.push({ type: "SyncReplica", vm: v.id, key, reason: `final sync of a planned migration to ${where}` });
  return result(v, "Syncing", v.replica.syncing ? `final sync: ${Math.round(v.replica.syncing.sentMiB)} of ${Math.round(v.replica.syncing.totalMiB)} MiB` : "final sync asked for");
}

function test(s: Readonly<RecoveryPlanSituation>, snapshots: Map<string, ClusterSnapshot>, v: PlanVm, before: Result | undefined, actions: Action[]): Result {
  const { plan } = s;
  const namespace = v.vm.metadata.namespace ?? "default";
  const copy = testCopyName(v.vm.metadata.name);
  const copyId = `${namespace}/${copy}`;
  const cluster = v.vm.spec.replication!.targetCluster;
  if (before?.result === "CleanedUp" || cleaningUp(plan, s.now)) {
    if (v.copy) {
      actions.push({ type: "Remove", vm: copyId, reason: `test of recovery plan ${plan.metadata.name} is over` });
      return result(v, "Starting", `${REMOVING} ${copy}`, { copy });
    }
    return result(v, "CleanedUp", `test copy ${copy} removed`, { copy });
  }
  if (v.copy) {
    const ready = v.copy.power === "Running";
    return result(v, ready ? "Recovered" : "Starting", `test copy ${copy} ${ready ? "runs" : "boots"} on host ${v.copy.host} on network ${plan.spec.testNetwork}`, { copy, host: v.copy.host, cluster, instanceTime: before?.instanceTime ?? iso(v.replica?.lastSync?.startedAt ?? s.now) });
  }
  if (!v.replica?.lastSync) return result(v, "Failed", "its replica has no completed sync to test");
  const copyVm: VirtualMachine = {
    ...v.vm,
    metadata: { ...v.vm.metadata, name: copy },
    spec: {
      ...v.vm.spec,
      placement: { ...v.vm.spec.placement, cluster },
      disks: v.vm.spec.disks.map((d) => ({ ...d, datastore: v.replica!.settings.targetDatastore })),
      networks: v.vm.spec.networks.map((n) => ({ name: plan.spec.testNetwork ?? "", macAddress: recoveryMac(v.vm, `${n.name}#test`) })),
    },
  };
  const snapshot = snapshots.get(cluster);
  const request = requestOf(copyVm);
  const placed = snapshot ? placeBatch(snapshot, [request]).placements[0] : undefined;
  if (!placed) return result(v, "Pending", `no host of cluster ${cluster} can take test copy ${copy} now`, { copy });
  const config: VmConfig = { ...desiredConfig(copyVm, copyVm.spec.networks.map((n) => ({ name: n.name, macAddress: n.macAddress! })), undefined, []), managedBy: TEST_COPY_MANAGED_BY };
  const host = snapshot!.hosts.find((h) => h.name === placed.host);
  config.cpuFeatures = [...(snapshot!.cpuBaseline?.features ?? host?.cpu.features ?? [])].sort();
  actions.push({ type: "Recover", vm: copyId, host: placed.host, config, replicaOf: v.id, reason: `test of recovery plan ${plan.metadata.name}` });
  snapshots.set(cluster, { ...snapshot!, placed: [...snapshot!.placed, placedVm(request, placed.host)] });
  return result(v, "Starting", `starting test copy ${copy} on host ${placed.host}`, { copy, host: placed.host, cluster, instanceTime: iso(v.replica.lastSync.startedAt) });
}

/** How a test copy being removed is told (result Starting, step CleaningUp). */
const REMOVING = "removing test copy";

/** Test: the copies go once the test has run its duration (from the plan's start), or the plan is deleted. */
function cleaningUp(plan: Readonly<RecoveryPlan>, now: number): boolean {
  if (plan.metadata.deletionTimestamp) return true;
  const duration = plan.spec.testDurationSeconds;
  const started = plan.status?.startTime;
  return duration !== undefined && started !== undefined && now >= Date.parse(started) + duration * 1000;
}

function testCleanupWake(s: Readonly<RecoveryPlanSituation>, status: RecoveryPlanStatus): { wakeAt?: number } {
  const duration = s.plan.spec.testDurationSeconds;
  if (s.plan.spec.action !== "Test" || duration === undefined || !status.startTime) return {};
  const at = Date.parse(status.startTime) + duration * 1000;
  return at > s.now ? { wakeAt: at } : {};
}

/** What the recovery cost, from the VM's own status once it recovered under this plan. */
function withLoss(r: Result, v: PlanVm, startTime: string): void {
  const failover = v.vm.status?.replication?.failover;
  if (failover && Date.parse(failover.time) >= Date.parse(startTime) && (r.result === "Recovered" || r.result === "Starting")) {
    r.instanceTime = failover.instanceTime;
    r.dataLossSeconds = failover.dataLossSeconds;
    r.dataLossMiB = failover.dataLossMiB;
  }
  if (r.result === "Recovered" && r.copy === undefined) {
    const ready = findCondition(v.vm.status?.conditions, "Ready");
    if (ready?.status === "True") r.recoveryTimeSeconds = Math.max(0, Math.round((Date.parse(ready.lastTransitionTime) - Date.parse(startTime)) / 1000));
  }
}

// ---------------------------------------------------------------- the plan's status

/** How far a VM is, in the plan's steps: the plan is at the step of its VM furthest behind. */
const STEP_OF: Readonly<Record<RecoveryVmResult, RecoveryStep | undefined>> = {
  Pending: "Preparing",
  Fencing: "WaitingForFencing",
  Syncing: "FinalSync",
  Starting: "Starting",
  Recovered: undefined,
  Failed: undefined,
  CleanedUp: undefined,
};
const STEP_ORDER: readonly RecoveryStep[] = ["Preparing", "WaitingForFencing", "FinalSync", "Starting", "WaitingForReadiness", "CleaningUp"];

function stepOf(plan: Readonly<RecoveryPlan>, r: Result): RecoveryStep | undefined {
  if (plan.spec.action === "Test" && r.copy !== undefined && r.result === "Starting" && r.message?.startsWith(REMOVING)) return "CleaningUp";
  if (r.result === "Starting" && r.host !== undefined) return "WaitingForReadiness";
  return STEP_OF[r.result];
}

function summarizePlan(plan: Readonly<RecoveryPlan>, vms: Result[], startTime: string, now: number): RecoveryPlanStatus {
  const steps = vms.map((r) => stepOf(plan, r)).filter((x): x is RecoveryStep => x !== undefined);
  const step = STEP_ORDER.find((x) => steps.includes(x));
  const failed = vms.filter((r) => r.result === "Failed");
  const status: RecoveryPlanStatus = { observedGeneration: plan.metadata.generation, startTime, vms };
  let phase: RecoveryPlanPhase;
  if (step !== undefined) {
    phase = step === "Preparing" ? "Preparing" : "Running";
    const stuck = vms.find((r) => r.result === "Fencing" && r.message?.includes("may still run"));
    if (stuck) phase = "WaitingForUser";
    status.step = step;
    const behind = vms.filter((r) => stepOf(plan, r) === step);
    status.message = stuck ? `${stuck.vm}: ${stuck.message}` : `${step}: ${behind.length} of ${vms.length} VMs (${behind[0]!.vm}: ${behind[0]!.message})`;
  } else if (failed.length > 0) {
    phase = "Failed";
    status.message = `${failed.length} of ${vms.length} VMs failed: ${failed.map((r) => `${r.vm}: ${r.message}`).join("; ")}`;
    status.completionTime = iso(now);
  } else {
    phase = "Succeeded";
    status.completionTime = plan.status?.completionTime && plan.status.phase === "Succeeded" ? plan.status.completionTime : iso(now);
    status.message = succeededMessage(plan, vms);
  }
  status.phase = phase;
  return status;
}

function succeededMessage(plan: Readonly<RecoveryPlan>, vms: Result[]): string {
  if (plan.spec.action !== "Test") return `${vms.length} VMs recovered`;
  if (vms.every((r) => r.result === "CleanedUp")) return `test over: ${vms.length} copies removed`;
  return `${vms.length} test copies run on network ${plan.spec.testNetwork}; they are removed ${plan.spec.testDurationSeconds !== undefined ? `${plan.spec.testDurationSeconds} s after the test began` : "when the plan is deleted"}`;
}

function withConditions(plan: Readonly<RecoveryPlan>, status: RecoveryPlanStatus, now: number, refusal?: string): RecoveryPlanStatus {
  const phase = status.phase ?? "Idle";
  const message = status.message ?? "";
  const stalled = phase === "Failed" ? { reason: refusal ?? "RecoveryFailed", message } : phase === "WaitingForUser" ? { reason: "WaitingForUser", message } : undefined;
  const conditions = summarize(plan.status?.conditions, {
    ready: phase === "Succeeded",
    reason: phase === "Succeeded" ? "Succeeded" : status.step ?? phase,
    message,
    ...(stalled ? { stalled } : {}),
  }, iso(now), plan.metadata.generation);
  return { ...status, conditions };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
