// The HA step of a cluster's reconcile: the failover planner decides which VMs of failed hosts restart
// where and in what order; this runs the restarts, records attempts for the retry schedule, tells the
// VMs that wait why, and reports each decision as an event and in metrics.

import type { HostCluster, VirtualMachine } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import type { ClusterSnapshot } from "../placement/types.ts";
import { desiredConfig } from "../planners/lifecycle.ts";
import { INSUFFICIENT_FAILOVER_CAPACITY } from "../planners/ha/admission.ts";
import { failoverNeed } from "../planners/ha/failover.ts";
import { protectionOf, type Protection } from "../planners/ha/protection.ts";
import { planFailover, type FailoverVm, type Restart } from "../planners/ha/restart-order.ts";
import type { ReconcileContext } from "./context.ts";
import { vmKeyOfId } from "./context.ts";
import { requestOf } from "./cluster-snapshot.ts";
import { execute } from "./executor.ts";
import { viewHost, type HostView } from "./views.ts";

export interface FailoverRound {
  /** VMs HA is restarting: ordinary placement leaves them alone. */
  handled: Set<string>;
  /** When the plan next changes by itself (a lease expires, a delay ends), if it does. */
  wakeAt?: number;
}

/** The protection of every VM of the cluster, by VM id. */
export function protectionsOf(ctx: ReconcileContext, cluster: Readonly<HostCluster>, vms: readonly VirtualMachine[]): Map<string, Protection> {
  const policies = ctx.store.list("HAPolicy");
  return new Map(vms.map((vm) => [vmId(vm), protectionOf(vm, policies, cluster)]));
}

export async function restartFailedVms(
  ctx: ReconcileContext,
  cluster: Readonly<HostCluster>,
  members: readonly HostView[],
  vms: readonly VirtualMachine[],
  protections: ReadonlyMap<string, Protection>,
  snapshot: ClusterSnapshot,
): Promise<FailoverRound> {
  const now = ctx.clock.now();
  const hosts = new Map(members.map((m) => [m.name, m]));
  const byId = new Map<string, VirtualMachine>();
  const failoverVms: FailoverVm[] = [];
  for (const vm of vms) {
    const id = vmId(vm);
    const protection = protections.get(id);
    if (!protection?.protected || vm.metadata.deletionTimestamp) continue;
    byId.set(id, vm);
    const instance = ctx.observed.vm(id);
    const host = instance ? hosts.get(instance.host) ?? viewHost(ctx, instance.host) : undefined;
    const need = failoverNeed(vm, instance, host ? { phase: host.phase, ...(host.observed ? { observed: host.observed } : {}) } : undefined);
    failoverVms.push({ id, request: requestOf(vm), protection, ...(instance ? { instance } : {}), ...(need ? { need } : {}) });
  }
  const failoverHosts = cluster.spec.ha.admissionControl.policy === "DedicatedFailoverHosts" ? cluster.spec.ha.admissionControl.failoverHosts ?? [] : [];
  const plan = planFailover({ snapshot, vms: failoverVms, failoverHosts, attempts: ctx.ha.attempts, now });

  const handled = new Set(plan.handled);
  forgetSettled(ctx, cluster, handled);
  for (const restart of plan.restarts) await runRestart(ctx, cluster, byId.get(restart.vm)!, restart, members, protections.get(restart.vm)!);
  for (const wait of plan.waiting) setWaiting(ctx, wait.vm, { reason: wait.reason, message: wait.message });
  for (const failure of plan.failed) setWaiting(ctx, failure.vm, { reason: "RestartFailed", message: failure.message, failed: true });
  for (const need of failoverVms) {
    if (need.need && !ctx.ha.failovers.has(need.id)) ctx.ha.failovers.set(need.id, { fromHost: need.need.fromHost, reason: need.need.reason, failedAt: need.need.failedAt, attempts: 0 });
  }
  const wakes = plan.waiting.map((w) => w.until).filter((t): t is number => t !== undefined && Number.isFinite(t));
  return { handled, ...(wakes.length > 0 ? { wakeAt: Math.min(...wakes) } : {}) };
}

async function runRestart(ctx: ReconcileContext, cluster: Readonly<HostCluster>, vm: VirtualMachine, restart: Restart, members: readonly HostView[], protection: Protection): Promise<void> {
  const features = members.find((m) => m.name === restart.host)?.host?.spec.cpu.features ?? [];
  const config = { ...desiredConfig(vm, ctx.macs.macsFor(vm), cluster, features), isolationResponse: protection.isolationResponse };
  const why = `${restart.reason} of host ${restart.fromHost}`;
  const attempts = ctx.ha.attempts.get(restart.vm) ?? { count: 0, firstAt: ctx.clock.now() };
  const record = ctx.ha.failovers.get(restart.vm) ?? { fromHost: restart.fromHost, reason: restart.reason, failedAt: restart.failedAt, attempts: 0 };
  ctx.ha.waiting.delete(restart.vm);
  let error: string | undefined;
  try {
    const outcome = await execute(ctx, { type: "Start", vm: restart.vm, host: restart.host, config, reason: `HA restart after ${why}` });
    if (outcome === "refused") error = "the host refused the power-on (see the log)";
  } catch (err) {
    error = (err as Error).message;
    ctx.log.error({ err, vm: restart.vm }, "HA restart failed");
  }
  record.attempts += 1;
  record.lastAttempt = ctx.clock.now();
  if (error === undefined) {
    record.toHost = restart.host;
    ctx.ha.attempts.delete(restart.vm);
    ctx.metrics.failovers.inc({ reason: restart.reason });
    ctx.events.record(vm, "Normal", "FailoverRestart", `restarting on host ${restart.host} (was on ${restart.fromHost}): ${why}, priority ${protection.priority}`);
  } else {
    ctx.ha.attempts.set(restart.vm, { count: attempts.count + 1, firstAt: attempts.firstAt, lastError: error });
    ctx.events.record(vm, "Warning", "FailoverRestartFailed", `restart on host ${restart.host} (was on ${restart.fromHost}) failed: ${error}; attempt ${attempts.count + 1} of 5`);
  }
  ctx.ha.failovers.set(restart.vm, record);
  ctx.enqueue(vmKeyOfId(restart.vm));
}

function setWaiting(ctx: ReconcileContext, id: string, waiting: { reason: string; message: string; failed?: boolean }): void {
  const before = ctx.ha.waiting.get(id);
  if (before?.reason === waiting.reason && before.message === waiting.message) return;
  ctx.ha.waiting.set(id, waiting);
  ctx.enqueue(vmKeyOfId(id));
}

/** VMs of the cluster no longer waiting on HA: their wait is over (restarted, or no longer in need). */
function forgetSettled(ctx: ReconcileContext, cluster: Readonly<HostCluster>, handled: ReadonlySet<string>): void {
  for (const [id, wait] of ctx.ha.waiting) {
    // Admission control's waits belong to the cluster's placement round, which forgets them itself.
    if (handled.has(id) || wait.reason === INSUFFICIENT_FAILOVER_CAPACITY) continue;
    const vm = ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
    if (vm && vm.spec.placement.cluster !== cluster.metadata.name) continue;
    ctx.ha.waiting.delete(id);
    ctx.ha.attempts.delete(id);
    ctx.enqueue(vmKeyOfId(id));
  }
}
