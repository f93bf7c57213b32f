// Stage 3, placement of waiting VMs: the admitted VMs placed in one batch from the snapshot the stages
// before took their share of (placement/), so two VMs never count on the same free capacity. Dedicated
// failover hosts run nothing in normal operation.

import { placeBatch, requestOf } from "../../placement/index.ts";
import type { VmRequest } from "../../placement/index.ts";
import { HOST_LABEL } from "../../api/types.ts";
import { ordinaryPlacementSnapshot } from "../ha/admission.ts";
import { placedVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";

export function placementStage(s: Readonly<ClusterSituation>, state: StageState, admitted: readonly VmFacts[]): void {
  if (admitted.length === 0) return;
  const snapshot = s.cluster.spec.ha.enabled ? ordinaryPlacementSnapshot(state.snapshot, s.cluster.spec.ha.admissionControl) : state.snapshot;
  const pinned = coldTargets(s);
  const plan = placeBatch(snapshot, admitted.map((f) => pinnedTo(requestOf(f.vm), pinned.get(f.id))));
  const byId = new Map(admitted.map((f) => [f.id, f]));
  const placed = [...state.snapshot.placed];
  for (const placement of plan.placements) {
    const f = byId.get(placement.vm)!;
    const features = s.hosts.find((h) => h.name === placement.host)?.host?.spec.cpu.features ?? [];
    const config = { ...desiredConfig(f.vm, f.networks, s.cluster, features), isolationResponse: f.protection.isolationResponse };
    const why = f.instance ? "restart" : "placement";
    state.actions.push({ stage: "placement", action: { type: "Start", vm: f.id, host: placement.host, config, reason: `${why} (score ${placement.score})` } });
    placed.push(placedVm(requestOf(f.vm), placement.host));
    state.handled.add(f.id);
  }
  for (const refusal of plan.unschedulable) {
    state.verdicts.set(refusal.vm, { kind: "Unschedulable", message: refusal.message });
    state.handled.add(refusal.vm);
  }
  state.snapshot = { ...state.snapshot, placed };
}

/** VMs moving cold to a host a VirtualMachineMigration names: they power on there, or wait for it. */
function coldTargets(s: Readonly<ClusterSituation>): Map<string, string> {
  const targets = new Map<string, string>();
  for (const r of s.requests) {
    const cold = r.status?.phase === "Switchover" || s.previousRequests?.get(`${r.metadata.namespace ?? "default"}/${r.metadata.name}`)?.kind === "Cold";
    if (r.spec.mode === "Cold" && r.spec.targetHost && cold && !r.metadata.deletionTimestamp) targets.set(`${r.metadata.namespace ?? "default"}/${r.spec.vmName}`, r.spec.targetHost);
  }
  return targets;
}

function pinnedTo(request: VmRequest, host: string | undefined): VmRequest {
  if (host === undefined) return request;
  // Required terms are ORed (as nodeAffinity's): the pin joins every one of them.
  const pin = { key: HOST_LABEL, operator: "In" as const, values: [host] };
  const affinity = request.placement.hostAffinity;
  const terms = affinity?.required?.length ? affinity.required : [{}];
  const required = terms.map((term) => ({ ...term, matchExpressions: [...(term.matchExpressions ?? []), pin] }));
  return { ...request, placement: { ...request.placement, hostAffinity: { ...affinity, required } } };
}
