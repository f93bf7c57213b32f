// `vireo plan`'s engine: one reconcile of every object over a snapshot, with the very reconcilers the
// controller runs, but with the executor in dry-run mode (it records each action instead of applying it)
// and a status writer that keeps statuses in the plan's own store. The executor is the only place Vireo
// acts, so this is what turns a reconcile into a plan: the decisions are the controller's own, not a copy.

import type { DriftStatus, Kind, VireoObject } from "../api/types.ts";
import { keyOf, objectKey } from "../api/types.ts";
import { findCondition } from "../api/conditions.ts";
import type { Action } from "../planners/actions.ts";
import { MANAGED_BY } from "../core/observation.ts";
import type { HypervisorProvider } from "../provider/provider.ts";
import type { ObjectStore } from "../sources/store.ts";
import { silentLogger } from "../observe/log.ts";
import type { Clock } from "../core/clock.ts";
import { Controller } from "./controller.ts";
import { vmKeyOfId } from "./context.ts";
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

export interface PlanReport {
  /** The time the plan was made at, on the provider's clock (ms). */
  at: number;
  actions: PlannedAction[];
  /** VMs that should run and that no host can take now, with the reason. */
  unschedulable: { namespace: string; name: string; message: string }[];
  /** VMs the cluster holds back (admission control, HA restart order, capacity), with the reason. */
  waiting: { namespace: string; name: string; reason: string; message: string }[];
  drift: PlannedDrift[];
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
    actions: actions.map(plannedAction),
    unschedulable: verdicts.flatMap(([id, v]) => v.kind === "Unschedulable" ? [{ ...nameOf(id), message: v.message }] : []),
    waiting: verdicts.flatMap(([id, v]) => v.kind === "NotAdmitted" || v.kind === "Waiting" ? [{ ...nameOf(id), reason: v.kind === "Waiting" ? v.reason : "InsufficientFailoverCapacity", message: v.message }] : []),
    drift,
  };
}

function nameOf(id: string): { namespace: string; name: string } {
  const [namespace, name] = id.split("/") as [string, string];
  return { namespace, name };
}

function idOfKey(key: string): string {
  const [, namespace, name] = key.split("/");
  return `${namespace}/${name}`;
}

function plannedAction(action: Action): PlannedAction {
  const reason = action.reason;
  switch (action.type) {
    case "RegisterHost":
    case "UnregisterHost": return { kind: "Host", name: action.host, action: action.type, reason };
    default: {
      const [namespace, name] = action.vm.split("/") as [string, string];
      return { kind: "VirtualMachine", namespace, name, action: action.type, ...(action.type === "Start" ? { host: action.host } : {}), reason };
    }
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
