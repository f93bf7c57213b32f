// Stage 3, placement of waiting VMs: the admitted VMs placed in one batch from the snapshot the stages
// before took their share of (placement/), so two VMs never count on the same free capacity. Dedicated
// failover hosts run nothing in normal operation.

import { placeBatch, requestOf } from "../../placement/index.ts";
import { ordinaryPlacementSnapshot } from "../ha/admission.ts";
import { placedVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";

export function placementStage(s: Readonly<ClusterSituation>, state: StageState, admitted: readonly VmFacts[]): void {
  if (admitted.length === 0) return;
  const snapshot = s.cluster.spec.ha.enabled ? ordinaryPlacementSnapshot(state.snapshot, s.cluster.spec.ha.admissionControl) : state.snapshot;
  const plan = placeBatch(snapshot, admitted.map((f) => requestOf(f.vm)));
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
