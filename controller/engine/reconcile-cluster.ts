// Reconciles one HostCluster: gathers one snapshot of the cluster, lets the cluster planner decide
// (planners/cluster/plan.ts: HA restarts, admission control, placement, evacuation), executes the plan,
// records what the restarts came to, publishes the verdicts the VMs' reconciles read, and writes status.

import type { HostCluster, VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { objectKey, vmId } from "../api/types.ts";
import { planCluster } from "../planners/cluster/plan.ts";
import type { ClusterAction, ClusterPlan, ClusterSituation, PublishedVerdict, RequestVerdict, VmFacts } from "../planners/cluster/types.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import { jsonEqual } from "../api/equal.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, hostKey, vmKeyOfId, wakeAt, writeStatusIfChanged } from "./context.ts";
import { FleetView } from "./replication.ts";
import type { ReplicaSite } from "../planners/replication/settings.ts";
import { snapshotOf } from "./cluster-snapshot.ts";
import { executeReporting } from "./executor.ts";
import { viewHost, type HostView } from "./views.ts";

const REGISTRATION_WAIT_MS = 1_000;

function migrationEnded(request: Readonly<VirtualMachineMigration>): boolean {
  const phase = request.status?.phase;
  return phase === "Succeeded" || phase === "Failed" || phase === "Cancelled";
}

export async function reconcileCluster(ctx: ReconcileContext, name: string): Promise<ReconcileResult | void> {
  const cluster = clusterByName(ctx, name);
  if (!cluster) return forgetCluster(ctx, name);

  const situation = gatherCluster(ctx, cluster);
  const plan = planCluster(situation);
  const failures = await executePlan(ctx, plan, situation);
  recordFailovers(ctx, plan);
  recordMoves(ctx, name, plan);
  publishVerdicts(ctx, name, plan.verdicts);
  publishRequestVerdicts(ctx, name, plan.requestVerdicts);
  publishNotes(ctx, ctx.replication.notes, name, plan.replication);
  publishNotes(ctx, ctx.faultTolerance.notes, name, plan.faultTolerance);

  ctx.metrics.vmsAwaitingCapacity.set({ cluster: name }, plan.status.vmsAwaitingCapacity ?? 0);
  if (plan.status.failoverCapacity) ctx.metrics.tolerableHostFailures.set({ cluster: name }, plan.status.failoverCapacity.tolerates);
  else ctx.metrics.tolerableHostFailures.remove({ cluster: name });
  await writeStatusIfChanged(ctx, cluster, plan.status);

  if (failures > 0) throw new Error(`${failures} of ${plan.actions.length} actions in cluster ${name} failed`);
  if (plan.registering && situation.vms.some((f) => !f.instance || f.instance.power === "Off")) return { requeueAfter: REGISTRATION_WAIT_MS };
  if (plan.wakeAt !== undefined) return wakeAt(ctx, plan.wakeAt);
}

/**
 * The cluster as it stands: its hosts, its VMs with their protection and observation, and the memory of HA —
 * what its next round plans from (exported for the benchmarks, which time the planner on real rounds).
 */
export function gatherCluster(ctx: ReconcileContext, cluster: HostCluster): ClusterSituation {
  const name = cluster.metadata.name;
  const clusters = ctx.store.list("HostCluster");
  // Every declared host once: the members, and the cluster of each (to tell another cluster's host from none).
  const views = ctx.store.list("Host").map((h) => viewHost(ctx, h.metadata.name, clusters));
  const members = views
    .filter((v) => v.cluster?.metadata.name === name)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(members.map((m) => [m.name, m]));
  const policies = ctx.store.list("HAPolicy");
  const fleet = new FleetView(ctx);
  const vms: VmFacts[] = fleet.vmsOf(name).map(({ vm, declared, role, plans, networks }) => {
    const id = vmId(vm);
    const instance = ctx.observed.vm(id);
    const replica = ctx.observed.replica(id);
    const secondary = ctx.observed.secondary(id);
    const instanceHost: HostView | undefined = instance ? byName.get(instance.host) ?? viewHost(ctx, instance.host, clusters) : undefined;
    return {
      vm: onItsPlatform(vm, instance ? byName.get(instance.host) : undefined), declared, role, plans, id, networks,
      ...(instance ? { instance } : {}),
      ...(instanceHost ? { instanceHost } : {}),
      ...(replica ? { replica } : {}),
      ...(secondary ? { secondary } : {}),
      // Protection is the declared VM's (its replication included), in the cluster it is in now.
      protection: protectionOf(declared, policies, cluster),
    };
  });
  // Where the replicas of the cluster's VMs may live, and this cluster's own link out.
  const replicaSites = new Map<string, ReplicaSite>([[name, fleet.replicaSite(name)]]);
  for (const f of vms) {
    for (const other of [f.declared.spec.replication?.targetCluster, f.declared.spec.placement.cluster]) {
      if (other !== undefined && !replicaSites.has(other)) replicaSites.set(other, fleet.replicaSite(other));
    }
  }
  const memory = { attempts: ctx.ha.attempts, failovers: ctx.ha.failovers, balancing: ctx.ha.balancing.get(name) ?? { holdDowns: new Map() }, moves: ctx.ha.moves };
  const ids = new Set(vms.map((f) => f.id));
  const migrations = ctx.observed.migrations().filter((m) => ids.has(m.vm));
  const conversions = [...ctx.observed.conversions()].filter((c) => ids.has(c.vm));
  const requests = ctx.store.list("VirtualMachineMigration").filter((r) => ids.has(`${r.metadata.namespace ?? "default"}/${r.spec.vmName}`) && !migrationEnded(r));
  const previousRequests = ctx.requestVerdicts.get(name);
  const hostClusters = new Map(views.map((v) => [v.name, v.cluster?.metadata.name]));
  return {
    cluster, hosts: members, vms, snapshot: snapshotOf(ctx, cluster, members), memory, migrations, conversions, requests, hostClusters,
    ...(previousRequests ? { previousRequests } : {}),
    site: fleet.site(name),
    replicaSites,
    now: ctx.clock.now(),
  };
}

/**
 * The VM pinned to the hypervisor type of the member host it is registered on, when its spec pins none: its
 * disks and devices are that platform's, so a restart or a move goes to a host of the same type, and only a
 * conversion changes it (a VirtualMachineMigration with targetHypervisor).
 */
function onItsPlatform(vm: VirtualMachine, host: HostView | undefined): VirtualMachine {
  const platform = host?.host?.spec.hypervisor;
  if (platform === undefined || vm.spec.placement.hypervisor !== undefined) return vm;
  return { ...vm, spec: { ...vm.spec, placement: { ...vm.spec.placement, hypervisor: platform } } };
}

/** Runs the plan's actions in order; returns how many failed. */
async function executePlan(ctx: ReconcileContext, plan: ClusterPlan, situation: ClusterSituation): Promise<number> {
  const vms = new Map(situation.vms.map((f) => [f.id, f.vm]));
  let failures = 0;
  for (const step of plan.actions) {
    let error: string | undefined;
    try {
      const result = await executeReporting(ctx, step.action);
      if (result.outcome === "refused") error = result.message ?? "the host refused it (see the log)";
    } catch (err) {
      error = (err as Error).message;
      ctx.log.error({ err, vm: step.action.vm }, `${step.stage}: ${step.action.type} failed`);
    }
    // A refused restart is HA's to retry on its schedule, a refused migration its stage's; a failed start or stop is retried with backoff.
    if (error !== undefined && (step.stage === "placement" || step.action.type === "Stop")) failures++;
    const vm = vms.get(step.action.vm);
    if (vm) recordOutcome(ctx, vm, step, error);
    if (error !== undefined && step.action.type === "Migrate") refuseMove(plan, step.action.vm, step.action.key, error);
    if (error !== undefined && step.action.type === "Convert") refuseConversion(plan, step.action.settings.key, error);
    // The VM reports what was done to it. A start the hosts refused changed nothing it could report, and
    // waking it would wake this cluster again at once (a VM waiting for a host asks for a round): the
    // cluster's own retry, with backoff, tries again.
    if (error === undefined || step.stage === "restarts") ctx.enqueue(vmKeyOfId(step.action.vm));
  }
  return failures;
}

/** A live move the hosts refused (another CPU, no room): the request fails with their words, or the stage's move counts as a failed attempt. */
function refuseMove(plan: ClusterPlan, vm: string, key: string, message: string): void {
  for (const [name, verdict] of plan.requestVerdicts) {
    if (verdict.kind === "Live" && verdict.key === key) plan.requestVerdicts.set(name, { kind: "Refused", message });
  }
  const move = plan.moves.get(vm);
  // Counted as a failed attempt by the next round (a move never reported is one), with the hosts' words.
  if (move?.key === key) plan.moves.set(vm, { ...move, lastFailure: message, startedAt: Number.NEGATIVE_INFINITY });
}

/** A conversion the hosts refused: noted on its verdict, so the next round ends it with their words and starts the VM again. */
function refuseConversion(plan: ClusterPlan, key: string, message: string): void {
  for (const [name, verdict] of plan.requestVerdicts) {
    if (verdict.kind === "Conversion" && verdict.key === key) plan.requestVerdicts.set(name, { ...verdict, refused: message });
  }
}

/** What an action came to, in HA's memory and as an event. */
function recordOutcome(ctx: ReconcileContext, vm: VirtualMachine, step: ClusterAction, error: string | undefined): void {
  if (step.stage !== "restarts" && step.stage !== "placement") {
    const action = step.action;
    if (error !== undefined) {
      if (action.type === "Migrate") ctx.events.record(vm, "Warning", "MigrationRefused", `${action.reason}: the hosts refused the migration to ${action.target}: ${error}`);
      if (action.type === "Protect") ctx.events.record(vm, "Warning", "SecondaryRefused", `the hosts refused its fault-tolerant secondary on ${action.host}: ${error}`);
    } else if (action.type === "Stop") ctx.events.record(vm, "Normal", "Stopping", action.reason);
    else if (action.type === "Replicate") ctx.events.record(vm, "Normal", "ReplicationConfigured", `${action.reason}: replicating to datastore ${action.settings.targetDatastore} every ${action.settings.rpoMs / 2000} s at most`);
    else if (action.type === "Migrate") ctx.events.record(vm, "Normal", "Migrating", `migrating live to host ${action.target}: ${action.reason}`);
    else if (action.type === "Protect") ctx.events.record(vm, "Normal", "SecondaryStarting", `making its fault-tolerant secondary on host ${action.host}: ${action.reason}`);
    else if (action.type === "Unprotect") ctx.events.record(vm, "Normal", "SecondaryRemoved", `dropping its fault-tolerant secondary: ${action.reason}`);
    return;
  }
  if (step.stage !== "restarts") return;
  const id = step.action.vm;
  if (step.recovery) {
    ctx.metrics.replicaFailovers.inc({ kind: step.recovery.trigger, result: error === undefined ? "Started" : "Refused" });
    if (error === undefined) ctx.replication.recoveries.set(id, step.recovery);
  }
  const { fromHost, reason, failedAt, priority } = step.restart;
  const attempts = ctx.ha.attempts.get(id) ?? { count: 0, firstAt: ctx.clock.now() };
  const record = { ...(ctx.ha.failovers.get(id) ?? { fromHost, reason, failedAt, attempts: 0 }) };
  record.attempts += 1;
  record.lastAttempt = ctx.clock.now();
  const why = `${reason} of host ${fromHost}`;
  if (error === undefined) {
    record.toHost = step.action.host;
    ctx.ha.attempts.delete(id);
    ctx.metrics.failovers.inc({ reason });
    ctx.events.record(vm, "Normal", "FailoverRestart", `restarting on host ${step.action.host} (was on ${fromHost}): ${why}, priority ${priority}`);
  } else {
    ctx.ha.attempts.set(id, { count: attempts.count + 1, firstAt: attempts.firstAt, lastError: error });
    ctx.events.record(vm, "Warning", "FailoverRestartFailed", `restart on host ${step.action.host} (was on ${fromHost}) failed: ${error}; attempt ${attempts.count + 1} of 5`);
  }
  ctx.ha.failovers.set(id, record);
}

/** Failovers that began, HA waits that are over, and failovers completed: recorded, measured and told. */
function recordFailovers(ctx: ReconcileContext, plan: ClusterPlan): void {
  for (const { vm, record } of plan.newFailovers) if (!ctx.ha.failovers.has(vm)) ctx.ha.failovers.set(vm, record);
  for (const vm of plan.settled) ctx.ha.attempts.delete(vm);
  for (const { vm: id, record, seconds } of plan.recovered) {
    ctx.ha.failovers.delete(id);
    if (record.reason === "SiteFailure") ctx.metrics.replicaRecoveryTime.observe(seconds);
    else ctx.metrics.recoveryTime.observe(seconds);
    const vm = ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
    if (vm) ctx.events.record(vm, "Normal", "FailoverComplete", `Ready on host ${record.toHost} ${Math.round(seconds)}s after host ${record.fromHost} failed (${record.reason})`);
  }
}

/** The live moves the cluster began this round, and those over. */
function recordMoves(ctx: ReconcileContext, cluster: string, plan: ClusterPlan): void {
  for (const [vm, move] of plan.moves) {
    if (move) ctx.ha.moves.set(vm, move);
    else ctx.ha.moves.delete(vm);
  }
  if (plan.balancing?.passAt !== undefined || plan.holdDowns) {
    const before = ctx.ha.balancing.get(cluster) ?? { holdDowns: new Map() };
    ctx.ha.balancing.set(cluster, { ...before, ...(plan.balancing?.passAt !== undefined ? { lastPassAt: plan.balancing.passAt } : {}), ...(plan.holdDowns ? { holdDowns: plan.holdDowns } : {}) });
  }
}

/** The round's verdicts on the migration requests replace the last round's; each request whose verdict changed is told. */
function publishRequestVerdicts(ctx: ReconcileContext, cluster: string, round: ReadonlyMap<string, RequestVerdict>): void {
  const before = ctx.requestVerdicts.get(cluster) ?? new Map<string, RequestVerdict>();
  const verdicts = new Map([...round].map(([name, verdict]) => [name, keepEstimate(verdict, before.get(name))]));
  ctx.requestVerdicts.set(cluster, verdicts);
  for (const name of new Set([...before.keys(), ...verdicts.keys()])) {
    if (jsonEqual(before.get(name) ?? null, verdicts.get(name) ?? null)) continue;
    const [namespace, object] = name.split("/") as [string, string];
    ctx.enqueue(objectKey("VirtualMachineMigration", object, namespace));
  }
}

/**
 * A copy under way keeps the estimate made when it was started: the planner estimates only then, and the
 * request's reconcile, which records it in status, may first run a round later.
 */
function keepEstimate(verdict: RequestVerdict, before: RequestVerdict | undefined): RequestVerdict {
  if (verdict.kind !== "Live" || verdict.estimate || before?.kind !== "Live" || before.key !== verdict.key || !before.estimate) return verdict;
  return { ...verdict, estimate: before.estimate };
}

/** The round's verdicts replace the last round's; each VM whose verdict changed is told. */
function publishVerdicts(ctx: ReconcileContext, cluster: string, verdicts: ReadonlyMap<string, PublishedVerdict>): void {
  const before = ctx.verdicts.get(cluster) ?? new Map<string, PublishedVerdict>();
  ctx.verdicts.set(cluster, verdicts);
  for (const id of new Set([...before.keys(), ...verdicts.keys()])) {
    const was = before.get(id);
    const now = verdicts.get(id);
    if (jsonEqual(was ?? null, now ?? null)) continue;
    ctx.enqueue(vmKeyOfId(id));
    // A host entering maintenance names the VMs that cannot leave it.
    for (const v of [was, now]) if (v?.kind === "EvacuationBlocked") ctx.enqueue(hostKey(v.host));
  }
}

/** The round's notes (replication, fault tolerance) replace the last round's; each VM whose note changed is told. */
function publishNotes<T>(ctx: ReconcileContext, byCluster: Map<string, ReadonlyMap<string, T>>, cluster: string, notes: ReadonlyMap<string, T>): void {
  const before = byCluster.get(cluster) ?? new Map<string, T>();
  byCluster.set(cluster, notes);
  for (const id of new Set([...before.keys(), ...notes.keys()])) {
    if (!jsonEqual(before.get(id) ?? null, notes.get(id) ?? null)) ctx.enqueue(vmKeyOfId(id));
  }
}

function forgetCluster(ctx: ReconcileContext, name: string): void {
  ctx.metrics.tolerableHostFailures.remove({ cluster: name });
  ctx.metrics.vmsAwaitingCapacity.remove({ cluster: name });
  const verdicts = ctx.verdicts.get(name);
  ctx.verdicts.delete(name);
  ctx.replication.notes.delete(name);
  ctx.faultTolerance.notes.delete(name);
  for (const id of verdicts?.keys() ?? []) ctx.enqueue(vmKeyOfId(id));
}
