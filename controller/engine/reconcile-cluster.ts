// Reconciles one HostCluster: gathers one snapshot of the cluster, lets the cluster planner decide
// (planners/cluster/plan.ts: HA restarts, admission control, placement, evacuation), executes the plan,
// records what the restarts came to, publishes the verdicts the VMs' reconciles read, and writes status.

import type { HostCluster, VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import { planCluster } from "../planners/cluster/plan.ts";
import type { ClusterAction, ClusterPlan, ClusterSituation, PublishedVerdict, VmFacts } from "../planners/cluster/types.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import { jsonEqual } from "../api/equal.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, vmKeyOfId, vmsOfCluster, writeStatusIfChanged } from "./context.ts";
import { snapshotOf } from "./cluster-snapshot.ts";
import { execute } from "./executor.ts";
import { viewHost, type HostView } from "./views.ts";

const REGISTRATION_WAIT_MS = 1_000;

function migrationEnded(request: Readonly<VirtualMachineMigration>): boolean {
  const phase = request.status?.phase;
  return phase === "Succeeded" || phase === "Failed" || phase === "Cancelled";
}

export async function reconcileCluster(ctx: ReconcileContext, name: string): Promise<ReconcileResult | void> {
  const cluster = clusterByName(ctx, name);
  if (!cluster) return forgetCluster(ctx, name);

  const situation = gather(ctx, cluster);
  const plan = planCluster(situation);
  const failures = await executePlan(ctx, plan, situation);
  recordFailovers(ctx, plan);
  publishVerdicts(ctx, name, plan.verdicts);

  ctx.metrics.vmsAwaitingCapacity.set({ cluster: name }, plan.status.vmsAwaitingCapacity ?? 0);
  if (plan.status.failoverCapacity) ctx.metrics.tolerableHostFailures.set({ cluster: name }, plan.status.failoverCapacity.tolerates);
  else ctx.metrics.tolerableHostFailures.remove({ cluster: name });
  await writeStatusIfChanged(ctx, cluster, plan.status);

  if (failures > 0) throw new Error(`${failures} of ${plan.actions.length} actions in cluster ${name} failed`);
  if (plan.registering && situation.vms.some((f) => !f.instance || f.instance.power === "Off")) return { requeueAfter: REGISTRATION_WAIT_MS };
  if (plan.wakeAt !== undefined) return { requeueAfter: Math.max(0, plan.wakeAt - ctx.clock.now()) };
}

/** The cluster as it stands: its hosts, its VMs with their protection and observation, and the memory of HA. */
function gather(ctx: ReconcileContext, cluster: HostCluster): ClusterSituation {
  const name = cluster.metadata.name;
  const clusters = ctx.store.list("HostCluster");
  const members = ctx.store.list("Host")
    .map((h) => viewHost(ctx, h.metadata.name, clusters))
    .filter((v) => v.cluster?.metadata.name === name)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(members.map((m) => [m.name, m]));
  const policies = ctx.store.list("HAPolicy");
  const vms: VmFacts[] = vmsOfCluster(ctx, name).map((vm) => {
    const id = vmId(vm);
    const instance = ctx.observed.vm(id);
    const instanceHost: HostView | undefined = instance ? byName.get(instance.host) ?? viewHost(ctx, instance.host, clusters) : undefined;
    return { vm, id, ...(instance ? { instance } : {}), ...(instanceHost ? { instanceHost } : {}), protection: protectionOf(vm, policies, cluster), networks: ctx.macs.macsFor(vm) };
  });
  const memory = { attempts: ctx.ha.attempts, failovers: ctx.ha.failovers, balancing: ctx.ha.balancing.get(name) ?? { holdDowns: new Map() }, moves: ctx.ha.moves };
  const ids = new Set(vms.map((f) => f.id));
  const migrations = ctx.observed.migrations().filter((m) => ids.has(m.vm));
  const requests = ctx.store.list("VirtualMachineMigration").filter((r) => ids.has(`${r.metadata.namespace ?? "default"}/${r.spec.vmName}`) && !migrationEnded(r));
  return { cluster, hosts: members, vms, snapshot: snapshotOf(ctx, cluster, members), memory, migrations, requests, now: ctx.clock.now() };
}

/** Runs the plan's actions in order; returns how many failed. */
async function executePlan(ctx: ReconcileContext, plan: ClusterPlan, situation: ClusterSituation): Promise<number> {
  const vms = new Map(situation.vms.map((f) => [f.id, f.vm]));
  let failures = 0;
  for (const step of plan.actions) {
    let error: string | undefined;
    try {
      if (await execute(ctx, step.action) === "refused") error = "the host refused it (see the log)";
    } catch (err) {
      error = (err as Error).message;
      ctx.log.error({ err, vm: step.action.vm }, `${step.stage}: ${step.action.type} failed`);
    }
    // A refused restart is HA's to retry on its schedule; a failed start or stop is retried with backoff.
    if (error !== undefined && step.stage !== "restarts") failures++;
    const vm = vms.get(step.action.vm);
    if (vm) recordOutcome(ctx, vm, step, error);
    ctx.enqueue(vmKeyOfId(step.action.vm));
  }
  return failures;
}

/** What an action came to, in HA's memory and as an event. */
function recordOutcome(ctx: ReconcileContext, vm: VirtualMachine, step: ClusterAction, error: string | undefined): void {
  if (step.stage === "evacuation") {
    if (error === undefined) ctx.events.record(vm, "Normal", "Stopping", step.action.reason);
    return;
  }
  if (step.stage !== "restarts") return;
  const id = step.action.vm;
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
    ctx.metrics.recoveryTime.observe(seconds);
    const vm = ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
    if (vm) ctx.events.record(vm, "Normal", "FailoverComplete", `Ready on host ${record.toHost} ${Math.round(seconds)}s after host ${record.fromHost} failed (${record.reason})`);
  }
}

/** The round's verdicts replace the last round's; each VM whose verdict changed is told. */
function publishVerdicts(ctx: ReconcileContext, cluster: string, verdicts: ReadonlyMap<string, PublishedVerdict>): void {
  const before = ctx.verdicts.get(cluster) ?? new Map<string, PublishedVerdict>();
  ctx.verdicts.set(cluster, verdicts);
  for (const id of new Set([...before.keys(), ...verdicts.keys()])) {
    if (!jsonEqual(before.get(id) ?? null, verdicts.get(id) ?? null)) ctx.enqueue(vmKeyOfId(id));
  }
}

function forgetCluster(ctx: ReconcileContext, name: string): void {
  ctx.metrics.tolerableHostFailures.remove({ cluster: name });
  ctx.metrics.vmsAwaitingCapacity.remove({ cluster: name });
  const verdicts = ctx.verdicts.get(name);
  ctx.verdicts.delete(name);
  for (const id of verdicts?.keys() ?? []) ctx.enqueue(vmKeyOfId(id));
}
