// `vireo plan`'s engine: one reconcile of every object over a snapshot, with the very reconcilers the
// controller runs, but with the executor in dry-run mode (it records each action instead of applying it)
// and a status writer that keeps statuses in the plan's own store. The executor is the only place Vireo
// acts, so this is what turns a reconcile into a plan: the decisions are the controller's own, not a copy.

import type { ConversionPreCheck, DriftStatus, Kind, MigrationEstimate, MigrationRequestPhase, VireoObject, VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { keyOf, objectKey } from "../api/types.ts";
import { findCondition } from "../api/conditions.ts";
import type { Action } from "../planners/actions.ts";
import type { RequestVerdict } from "../planners/cluster/types.ts";
import { isEnded } from "../planners/migration/request-status.ts";
import { MANAGED_BY } from "../core/observation.ts";
import type { HypervisorProvider } from "../provider/provider.ts";
import type { ObjectStore } from "../sources/store.ts";
import { silentLogger } from "../observe/log.ts";
import type { Clock } from "../core/clock.ts";
import { Controller } from "./controller.ts";
import { vmKeyOfId, type ReconcileContext } from "./context.ts";
import { reconcileCluster } from "./reconcile-cluster.ts";
import { reconcileHost } from "./reconcile-host.ts";
import { reconcileVm } from "./reconcile-vm.ts";

export interface PlannedAction {
  kind: Kind;
  namespace?: string;
  name: string;
  action: Action["type"];
  host?: string;
  reason: string;
}

export interface PlannedDrift {
  kind: Kind;
  namespace?: string;
  name: string;
  drift: DriftStatus;
  /** The Drifted condition's message: what differs and what Vireo does about it. */
  message: string;
}

/** A VirtualMachineMigration that has not ended, and what its cluster's planner says of it now. */
export interface PlannedMigration {
  namespace: string;
  name: string;
  /** The VM it moves, in its namespace. */
  vm: string;
  /** Where its status stands. */
  phase: MigrationRequestPhase;
  /** The planner's word this round: Live (starts now, or copies), Waiting, Cold, Refused (it would fail), Cancelling. */
  verdict: RequestVerdict["kind"];
  /** Where it goes: the host the planner chose or the one the request names; absent when placement has yet to choose. */
  target?: string;
  /** What Vireo expects of the live copy (rounds, downtime, duration), once it was judged possible. */
  estimate?: MigrationEstimate;
  /** Why it waits or would fail, or how a cold move goes. */
  message?: string;
  /** A conversion to another hypervisor type: what its pre-check found (blockers, warnings, the expected time). */
  preCheck?: ConversionPreCheck;
}

export interface PlanReport {
  /** The time the plan was made at, on the provider's clock (ms). */
  at: number;
  actions: PlannedAction[];
  /** VMs that should run and that no host can take now, with the reason. */
  unschedulable: { namespace: string; name: string; message: string }[];
  /** VMs the cluster holds back (admission control, HA restart order, capacity), with the reason. */
  waiting: { namespace: string; name: string; reason: string; message: string }[];
  drift: PlannedDrift[];
  /** The migrations asked for and not ended, with their estimates. */
  migrations: PlannedMigration[];
}

/**
 * What Vireo would do now with `store`'s objects and `provider`'s hosts, and the drift it sees — without
 * doing any of it. `store` is the plan's own copy: the pass records statuses in it.
 */
export async function dryRun(store: ObjectStore, provider: HypervisorProvider, clock: Clock): Promise<PlanReport> {
  const controller = new Controller({
    store,
    provider,
    clock,
    log: silentLogger(),
    statusWriter: { writeStatus: async () => undefined },
    events: { record: () => undefined },
  });
  const ctx = controller.ctx;
  const actions: Action[] = [];
  ctx.dryRun = actions;
  await controller.observe();
  for (const vm of store.list("VirtualMachine")) ctx.macs.adopt(vm);

  const hosts = store.list("Host").map((h) => h.metadata.name);
  for (const name of hosts) await reconcileHost(ctx, name);
  const vmKeys = new Set(store.list("VirtualMachine").map((vm) => keyOf(vm)));
  for (const instance of ctx.observed.vms()) if (instance.config.managedBy === MANAGED_BY) vmKeys.add(vmKeyOfId(instance.id));
  for (const key of [...vmKeys].sort()) await reconcileVm(ctx, key, idOfKey(key));
  // The drift is what the hosts report now, before anything the plan would do.
  const drift = driftOf(store);
  for (const cluster of store.list("HostCluster")) await reconcileCluster(ctx, cluster.metadata.name);

  const verdicts = [...ctx.verdicts.values()].flatMap((byVm) => [...byVm]).sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    at: clock.now(),
    actions: actions.map((a) => plannedAction(a, ctx)),
    unschedulable: verdicts.flatMap(([id, v]) => v.kind === "Unschedulable" ? [{ ...nameOf(id), message: v.message }] : []),
    waiting: verdicts.flatMap(([id, v]) => v.kind === "NotAdmitted" || v.kind === "Waiting" ? [{ ...nameOf(id), reason: v.kind === "Waiting" ? v.reason : "InsufficientFailoverCapacity", message: v.message }] : []),
    drift,
    migrations: migrationsOf(ctx),
  };
}

/** Every migration request not ended, with its cluster's verdict of this pass. */
function migrationsOf(ctx: ReconcileContext): PlannedMigration[] {
  const planned = ctx.store.list("VirtualMachineMigration").filter((r) => !isEnded(r.status?.phase)).map((r) => plannedMigration(r, verdictOn(ctx, r)));
  return planned.sort((a, b) => objectKey("VirtualMachineMigration", a.name, a.namespace).localeCompare(objectKey("VirtualMachineMigration", b.name, b.namespace)));
}

function plannedMigration(request: Readonly<VirtualMachineMigration>, verdict: RequestVerdict): PlannedMigration {
  const target = targetOf(verdict) ?? request.spec.targetHost ?? request.status?.targetHost;
  const estimate = verdict.kind === "Refused" ? undefined : estimateOf(verdict) ?? request.status?.estimate;
  const preCheck = verdict.kind === "Conversion" ? verdict.preCheck : request.status?.preCheck;
  return {
    namespace: request.metadata.namespace ?? "default",
    name: request.metadata.name,
    vm: request.spec.vmName,
    phase: request.status?.phase ?? "Pending",
    verdict: verdict.kind,
    ...(target !== undefined ? { target } : {}),
    ...(estimate ? { estimate } : {}),
    ...("message" in verdict ? { message: verdict.message } : {}),
    ...(preCheck ? { preCheck } : {}),
  };
}

function targetOf(verdict: RequestVerdict): string | undefined {
  return verdict.kind === "Live" || verdict.kind === "Cold" || verdict.kind === "Conversion" ? verdict.target : undefined;
}

function estimateOf(verdict: RequestVerdict): MigrationEstimate | undefined {
  return verdict.kind === "Live" || verdict.kind === "Waiting" ? verdict.estimate : undefined;
}

/** The verdict of the request's cluster; one whose VM or cluster is gone would fail, as its reconcile says. */
function verdictOn(ctx: ReconcileContext, request: Readonly<VirtualMachineMigration>): RequestVerdict {
  const id = `${request.metadata.namespace ?? "default"}/${request.spec.vmName}`;
  const vm = ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
  if (!vm) return { kind: "Refused", message: `VirtualMachine ${id} does not exist` };
  const cluster = vm.spec.placement.cluster;
  const verdict = ctx.requestVerdicts.get(cluster)?.get(`${request.metadata.namespace ?? "default"}/${request.metadata.name}`);
  return verdict ?? { kind: "Refused", message: `VM ${id}'s HostCluster ${cluster} does not exist` };
}

function nameOf(id: string): { namespace: string; name: string } {
  const [namespace, name] = id.split("/") as [string, string];
  return { namespace, name };
}

function idOfKey(key: string): string {
  const [, namespace, name] = key.split("/");
  return `${namespace}/${name}`;
}

function plannedAction(action: Action, ctx: ReconcileContext): PlannedAction {
  const reason = action.reason;
  switch (action.type) {
    case "RegisterHost":
    case "UnregisterHost": return { kind: "Host", name: action.host, action: action.type, reason };
    default: {
      const [namespace, name] = action.vm.split("/") as [string, string];
      const host = hostOf(action, ctx);
      return { kind: "VirtualMachine", namespace, name, action: action.type, ...(host !== undefined ? { host } : {}), reason };
    }
  }
}

/** The host an action goes to: a start's host, a migration's target, or the target of the migration a cancel stops. */
function hostOf(action: Action, ctx: ReconcileContext): string | undefined {
  switch (action.type) {
    case "Start": return action.host;
    case "Migrate":
    case "Convert": return action.target;
    case "CancelMigration": {
      const m = ctx.observed.migration(action.vm);
      return m?.key === action.key ? m.target : undefined;
    }
    default: return undefined;
  }
}

function driftOf(store: ObjectStore): PlannedDrift[] {
  const drifted: PlannedDrift[] = [];
  for (const kind of ["Host", "VirtualMachine"] as const) {
    for (const object of store.list(kind) as VireoObject[]) {
      const status = object.status as { drift?: DriftStatus; conditions?: [] } | undefined;
      if (!status?.drift) continue;
      drifted.push({
        kind,
        ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
        name: object.metadata.name,
        drift: status.drift,
        message: findCondition(status.conditions, "Drifted")?.message ?? "",
      });
    }
  }
  return drifted.sort((a, b) => objectKey(a.kind, a.name, a.namespace).localeCompare(objectKey(b.kind, b.name, b.namespace)));
}
