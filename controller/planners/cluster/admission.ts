// Stage 2, admission control: which VMs waiting to power on may start without breaking the cluster's HA
// policy (planners/ha/admission.ts). HA restarts never come here: admission control gates power-ons, not
// failover (BEHAVIOUR.md, Restart). A VM that fits no host even in an empty cluster is not admission
// control's to judge: it is Unschedulable, whatever its place in the batch.

import { requestOf } from "../../placement/index.ts";
import { placeBatch } from "../../placement/index.ts";
import type { VmRequest } from "../../placement/index.ts";
import { ordinaryPlacementSnapshot, planAdmission } from "../ha/admission.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";
import { limitsOf, primaryOf, secondaryId, secondaryRequest, whyNeverFaultTolerant } from "../ha/fault-tolerance.ts";

/** The VMs the stage lets through to placement, in their batch order. */
export function admissionStage(s: Readonly<ClusterSituation>, state: StageState, waiting: readonly VmFacts[]): VmFacts[] {
  const candidates = waiting.filter((f) => !fitsNowhere(s, state, f));
  const ha = s.cluster.spec.ha;
  if (!ha.enabled) return candidates;
  const judge = (vms: readonly VmFacts[]) => planAdmission({
    policy: ha.admissionControl,
    snapshot: state.snapshot,
    protectedVms: protectedRequests(s),
    // A fault-tolerant VM powers on with its secondary: admission control counts both reservations (vSphere FT).
    powerOns: vms.flatMap((f) => {
      const primary = { request: requestOf(f.vm), priority: f.protection.priority, protected: f.protection.protected };
      return withSecondary(s, f) ? [primary, { request: secondaryRequest(f.vm), priority: f.protection.priority, protected: false }] : [primary];
    }),
    hostCount: s.hosts.filter((h) => h.host?.spec.maintenance === false).length,
    // Every restart still to come (fenced, ordered, retried or short of room) needs room a power-on must not take.
    restartsAwaitingCapacity: [...state.verdicts.values()].filter((v) => v.kind === "Waiting").length,
  });
  let plan = judge(candidates);
  // A primary admitted without its secondary is not admitted: judged again without it, the VMs after it are
  // not held back by room it will not take.
  const halves = new Set(candidates.filter((f) => withSecondary(s, f) && plan.admitted.includes(f.id) && !plan.admitted.includes(secondaryId(f.id))).map((f) => f.id));
  if (halves.size > 0) {
    const secondaries = plan.refused.filter((r) => halves.has(primaryOf(r.vm) ?? ""));
    const again = judge(candidates.filter((f) => !halves.has(f.id)));
    plan = { ...again, refused: [...secondaries, ...again.refused] };
  }
  for (const refusal of plan.refused) {
    const primary = primaryOf(refusal.vm);
    const vm = primary ?? refusal.vm;
    if (primary !== undefined && state.verdicts.get(vm)?.kind === "NotAdmitted") continue;
    const message = primary !== undefined ? `${refusal.message} (counting its fault-tolerant secondary's reservation)` : refusal.message;
    state.verdicts.set(vm, { kind: "NotAdmitted", message, ownReason: refusal.ownReason, ...(refusal.behind ? { behind: primaryOf(refusal.behind) ?? refusal.behind } : {}) });
  }
  const admitted = new Set(plan.admitted);
  return candidates.filter((f) => admitted.has(f.id) && (!withSecondary(s, f) || admitted.has(secondaryId(f.id))));
}

/** Whether the VM powers on with a secondary to reserve room for: fault tolerance it may have. */
function withSecondary(s: Readonly<ClusterSituation>, f: Readonly<VmFacts>): boolean {
  return f.protection.faultTolerance && whyNeverFaultTolerant(f.vm, limitsOf(s.cluster)) === undefined;
}

/**
 * A VM no host of the cluster could take even were it empty (too large, a feature no host has, rules no
 * host meets): Unschedulable with kube-scheduler's per-reason message, judged on the cluster as it is.
 */
function fitsNowhere(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>): boolean {
  const request = requestOf(f.vm);
  const empty = ordinaryPlacementSnapshot({ ...state.snapshot, placed: [] }, s.cluster.spec.ha.admissionControl);
  if (placeBatch(empty, [request]).placements.length > 0) return false;
  const now = placeBatch(ordinaryPlacementSnapshot(state.snapshot, s.cluster.spec.ha.admissionControl), [request]);
  state.verdicts.set(f.id, { kind: "Unschedulable", message: now.unschedulable[0]?.message ?? "no host fits" });
  return true;
}

/** The placement requests of the cluster's protected VMs, by id: what a host failure must find room for. */
export function protectedRequests(s: Readonly<ClusterSituation>): Map<string, VmRequest> {
  const requests = new Map<string, VmRequest>();
  for (const f of s.vms) if (f.protection.protected && !f.vm.metadata.deletionTimestamp) requests.set(f.id, requestOf(f.vm));
  return requests;
}
