// The cluster planner: every decision that needs the whole cluster, made from one snapshot by a pipeline
// of stages in a fixed order, each seeing the capacity the stages before it took (docs/decisions/0007):
//
//   conversions under way → HA restarts (and recoveries from replicas) → admission control
//   → placement of waiting VMs → fault-tolerant secondaries → maintenance evacuation
//   → requested migrations → balancing → replication
//
// Pure: the same situation gives the same plan. The engine gathers the situation, executes the plan's
// actions, records their outcomes, and publishes the verdicts for the VMs' own reconciles.

import { admissionStage } from "./admission.ts";
import { balancingStage, type BalancingOutcome } from "./balancing.ts";
import { evacuationStage, vacating } from "./evacuation.ts";
import { migrationsStage } from "./migrations.ts";
import { conversionsStage } from "./conversions.ts";
import { placementStage } from "./placement.ts";
import { restartStage } from "./restarts.ts";
import { replicationStage } from "./replication.ts";
import { faultToleranceStage } from "./fault-tolerance.ts";
import type { FaultToleranceNote } from "../ha/fault-tolerance.ts";
import type { ReplicationNote } from "../replication/status.ts";
import { clusterStatus } from "./status.ts";
import { desiredPower } from "../run-strategy.ts";
import { requestOf } from "../../placement/index.ts";
import { placedVm } from "../ha/restart-order.ts";
import { ASKED_UNREPORTED_MS } from "../migration/slots.ts";
import type { ClusterPlan, ClusterSituation, PublishedVerdict, StageName, StageState, StageSummary, VmFacts } from "./types.ts";

export function planCluster(s: Readonly<ClusterSituation>): ClusterPlan {
  const state: StageState = { snapshot: withMovesUnderWay(s), actions: [], verdicts: new Map(), handled: new Set(), requestVerdicts: new Map(), moves: new Map() };
  const stages: StageSummary[] = [];
  const measure = (stage: StageName, run: () => void) => {
    const actions = state.actions.length;
    const verdicts = state.verdicts.size;
    run();
    stages.push({ stage, actions: state.actions.length - actions, verdicts: state.verdicts.size - verdicts });
  };

  // Hosts declared but not yet seen by an observation are being registered: placing now would call VMs
  // unschedulable for want of hosts that are a second away.
  const registering = s.hosts.some((h) => h.observed === undefined && h.host !== undefined);
  // A VM being converted for another hypervisor type is held first: no stage after starts or moves it.
  measure("conversions", () => conversionsStage(s, state));
  let restarts: ReturnType<typeof restartStage> = { newFailovers: [], settled: [], recovered: [] };
  if (!registering) {
    measure("restarts", () => { restarts = restartStage(s, state); });
    let admitted: VmFacts[] = [];
    measure("admission", () => { admitted = admissionStage(s, state, s.vms.filter((f) => !state.handled.has(f.id) && waitsForHost(f))); });
    measure("placement", () => placementStage(s, state, admitted));
  }
  let faultTolerance = new Map<string, FaultToleranceNote>();
  if (!registering) measure("faultTolerance", () => { faultTolerance = faultToleranceStage(s, state); });
  // VMs migrating now stay where the hosts put them until the migration ends: no stage moves them again.
  for (const m of s.migrations) {
    if (m.phase !== "PreCopy" && m.phase !== "Switchover") continue;
    state.handled.add(m.vm);
    state.verdicts.set(m.vm, { kind: "Migrating", target: m.target, message: `migrating live from ${m.source} to ${m.target}: round ${m.rounds}, ${Math.round(m.remainingMiB)} MiB to send` });
  }
  measure("evacuation", () => evacuationStage(s, state));
  measure("migrations", () => migrationsStage(s, state));
  let balancing: BalancingOutcome = {};
  measure("balancing", () => { balancing = balancingStage(s, state); });
  let replication = new Map<string, ReplicationNote>();
  measure("replication", () => { replication = replicationStage(s, state); });

  forgetSettledMoves(s, state);
  const verdicts = new Map<string, PublishedVerdict>();
  const generations = new Map(s.vms.map((f) => [f.id, f.vm.metadata.generation]));
  for (const [id, verdict] of state.verdicts) verdicts.set(id, { ...verdict, generation: generations.get(id) });
  return {
    actions: state.actions,
    verdicts,
    requestVerdicts: state.requestVerdicts,
    moves: state.moves,
    status: clusterStatus(s, state.snapshot, state.verdicts, balancing.report),
    ...(state.wakeAt !== undefined ? { wakeAt: state.wakeAt } : {}),
    ...restarts,
    registering,
    stages,
    ...(balancing.report ? { balancing: balancing.report } : {}),
    ...(balancing.holdDowns ? { holdDowns: balancing.holdDowns } : {}),
    replication,
    faultTolerance,
  };
}

/**
 * The snapshot with each VM migrating now counted on its target too, as the hosts count it: no stage may
 * send another VM where its rules or the target's room forbid, before this one has landed.
 */
function withMovesUnderWay(s: Readonly<ClusterSituation>): ClusterSituation["snapshot"] {
  const shadows = s.migrations.flatMap((m) => {
    const f = m.phase === "PreCopy" || m.phase === "Switchover" ? s.vms.find((v) => v.id === m.vm) : undefined;
    return f ? [{ ...placedVm(requestOf(f.vm), m.target), id: `${m.vm}@${m.target}` }] : [];
  });
  // A move the cluster asked for that the hosts have not reported yet is under way all the same: a later
  // round must not send an anti-affine neighbour, or more than the room, to its target meanwhile.
  for (const [vm, move] of s.memory.moves) {
    if (s.now - move.startedAt >= ASKED_UNREPORTED_MS || s.migrations.some((m) => m.vm === vm && m.key === move.key)) continue;
    const f = s.vms.find((v) => v.id === vm);
    if (f && f.instance?.host !== move.target) shadows.push({ ...placedVm(requestOf(f.vm), move.target), id: `${vm}@${move.target}` });
  }
  return shadows.length === 0 ? s.snapshot : { ...s.snapshot, placed: [...s.snapshot.placed, ...shadows] };
}

/** Moves of the cluster's own that are over: the VM arrived, or no longer needs to leave where it is. */
function forgetSettledMoves(s: Readonly<ClusterSituation>, state: StageState): void {
  for (const [vm, move] of s.memory.moves) {
    if (state.moves.has(vm)) continue;
    const f = s.vms.find((v) => v.id === vm);
    if (!f) continue;
    const arrived = s.migrations.some((m) => m.vm === vm && m.key === move.key && m.phase === "Succeeded");
    const stillLeaving = vacating(f.instanceHost) !== undefined;
    if (arrived || (move.stage === "evacuation" && !stillLeaving)) state.moves.set(vm, undefined);
  }
}

/** A VM that should run, is not on, and is not being deleted. */
function waitsForHost(f: Readonly<VmFacts>): boolean {
  if (f.vm.metadata.deletionTimestamp) return false;
  if (f.instance && f.instance.power !== "Off") return false;
  return desiredPower(f.vm, f.instance) === "On";
}
