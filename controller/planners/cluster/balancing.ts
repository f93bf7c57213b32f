// Stage 6, balancing (DRS): the last stage, so it moves only what already runs and no earlier stage dealt
// with, on the capacity every start and move before it took. A pass is due every `intervalSeconds`; none
// runs while HA restarts VMs or a host of the cluster is down or unheard from (the load then says nothing
// about where VMs belong). A pass measures the imbalance (balancing/load.ts), and while it is above what the
// threshold tolerates, or a preferred rule is broken, picks moves one at a time (balancing/search.ts).
// Automatic makes them: live migrations, each VM then held down (balancing/hold-down.ts). Manual lists them
// as recommendations, and makes those a person approved (`approvedRecommendations`, by id) once they are
// still allowed and still help. See docs/decisions/0008-balancing.md.

import { balancesLoad, imbalanceOf, targetImbalance } from "../balancing/load.ts";
import { worthFloor } from "../balancing/cost.ts";
import { holdDownAfterMove, liveHoldDowns } from "../balancing/hold-down.ts";
import { moveReason, recommendationOf } from "../balancing/recommendations.ts";
import { approvedMove, nextMove, type PlannedMove, type SearchLimits } from "../balancing/search.ts";
import { balancingWorld, recordMove, type BalancingWorld } from "../balancing/world.ts";
import { moveLive } from "./moves.ts";
import type { BalancingReport, ClusterSituation, HoldDown, HostFacts, StageState } from "./types.ts";

/** Recommendations listed at most (and moves looked for in one Manual pass). */
export const MAX_RECOMMENDATIONS = 20;
/** Moves one Automatic pass makes at most, whatever the migration limits allow. */
export const MAX_MOVES_PER_PASS = 20;

export interface BalancingOutcome {
  /** What the pass found, when one was due. */
  report?: BalancingReport;
  /** The hold-downs to remember, when the round moved a VM or a pass ran (which forgets the old ones). */
  holdDowns?: Map<string, HoldDown>;
}

export function balancingStage(s: Readonly<ClusterSituation>, state: StageState): BalancingOutcome {
  const spec = s.cluster.spec.balancing;
  if (spec.mode === "Disabled") return {};
  const intervalMs = spec.intervalSeconds * 1000;
  const last = s.memory.balancing.lastPassAt;
  const due = last === undefined || s.now - last >= intervalMs;
  const approved = spec.mode === "Manual" ? s.approvedRecommendations ?? [] : [];
  wake(state, due ? s.now + intervalMs : last + intervalMs);
  if (!due && approved.length === 0) return {};

  const skip = whyNoPass(s, state);
  const holdDowns = liveHoldDowns(s.memory.balancing.holdDowns, s.now);
  const world = balancingWorld(s, state, holdDowns);
  const imbalance = imbalanceOf(world.loads);
  const target = targetImbalance(spec.threshold, world.loads.hosts.length);
  const made = skip === undefined ? applyApproved(s, state, world, approved, holdDowns, target) : [];
  if (!due) return made.length > 0 ? { holdDowns } : {};
  if (skip !== undefined) return { report: { imbalance, target, projected: imbalance, recommendations: [], reason: skip } };

  const automatic = spec.mode === "Automatic";
  // Load moves lower the imbalance; a repair of a preferred rule may raise it, never past what the threshold
  // tolerates or, when the cluster is already beyond that, past where the pass found it.
  const limits: SearchLimits = { target, ceiling: Math.max(imbalance, target), floor: worthFloor(spec.threshold), useSlots: automatic };
  const moves: PlannedMove[] = [];
  while (balancesLoad(spec.threshold) && moves.length < (automatic ? MAX_MOVES_PER_PASS : MAX_RECOMMENDATIONS)) {
    const move = nextMove(world, limits);
    if (move === undefined) break;
    recordMove(world, move.mover, move.to, automatic);
    moves.push(move);
    if (automatic) migrate(s, state, move, holdDowns, moveReason(move, target));
  }
  const projected = imbalanceOf(world.loads);
  return {
    report: { imbalance, target, passAt: s.now, projected, recommendations: moves.map((m) => recommendationOf(m, target)), reason: passSummary(spec.threshold, imbalance, target, moves, automatic) },
    holdDowns,
  };
}

/**
 * Why no pass runs this round, when none does: HA is restarting VMs (their capacity comes first, and moving
 * VMs then would race the restarts), or a host is down or unheard from (its VMs' load is unknown, and it may
 * come back empty at any moment).
 */
export function whyNoPass(s: Readonly<ClusterSituation>, state: Readonly<StageState>): string | undefined {
  const down = s.hosts.filter((h) => isDown(h));
  if (down.length > 0) return `no balancing pass while ${describeHosts(down)}`;
  const restarts = state.actions.filter((a) => a.stage === "restarts").length;
  const waiting = [...state.verdicts.values()].filter((v) => v.kind === "Waiting").length;
  if (restarts + waiting > 0) return `no balancing pass while HA restarts VMs (${restarts} starting, ${waiting} waiting)`;
  return undefined;
}

/** Manual: the approved recommendations of the last status that are still allowed and still help, made now. */
function applyApproved(s: Readonly<ClusterSituation>, state: StageState, world: BalancingWorld, approved: readonly string[], holdDowns: Map<string, HoldDown>, target: number): PlannedMove[] {
  if (approved.length === 0) return [];
  const wanted = new Set(approved);
  const made: PlannedMove[] = [];
  for (const recommendation of s.cluster.status?.balancing?.recommendations ?? []) {
    if (!wanted.has(recommendation.id)) continue;
    const mover = world.movable.get(recommendation.vm);
    if (mover === undefined || mover.host !== recommendation.from || world.moved.has(mover.id)) continue;
    const move = approvedMove(world, mover, recommendation.to);
    if (move === undefined) continue;
    recordMove(world, mover, move.to, true);
    migrate(s, state, move, holdDowns, `approved recommendation ${recommendation.id}: ${moveReason(move, target)}`);
    made.push(move);
  }
  return made;
}

/** One live migration of the plan: the action, the VM's verdict, the move to record, its hold-down. */
function migrate(s: Readonly<ClusterSituation>, state: StageState, move: Readonly<PlannedMove>, holdDowns: Map<string, HoldDown>, reason: string): void {
  const id = move.mover.id;
  const key = `balance/${id}/${s.now}`;
  moveLive(s, state, move.mover.facts, move.to, "balancing", key, reason);
  state.moves.set(id, { stage: "balancing", key, target: move.to, startedAt: s.now, failures: 0 });
  holdDowns.set(id, holdDownAfterMove(holdDowns.get(id), s.now));
}

function passSummary(threshold: number, imbalance: number, target: number, moves: readonly PlannedMove[], automatic: boolean): string {
  const figures = `imbalance ${imbalance.toFixed(3)}, target ${target.toFixed(3)}`;
  if (!balancesLoad(threshold)) return `threshold 1 takes mandatory moves only: balancing moves nothing (${figures})`;
  if (moves.length > 0) return `${moves.length} move${moves.length === 1 ? "" : "s"} ${automatic ? "begun" : "recommended"} (${figures})`;
  if (imbalance <= target) return `balanced (${figures})`;
  return `no move is allowed and worth its cost${automatic ? " within the migration limits" : ""} (${figures})`;
}

function isDown(h: Readonly<HostFacts>): boolean {
  return h.phase === "Failed" || h.phase === "NotResponding" || h.phase === "Isolated" || h.phase === "Partitioned";
}

function describeHosts(hosts: readonly HostFacts[]): string {
  const named = hosts.slice(0, 3).map((h) => `${h.name} is ${h.phase}`).join(", ");
  return hosts.length > 3 ? `${named} and ${hosts.length - 3} more hosts are down` : named;
}

function wake(state: StageState, at: number): void {
  state.wakeAt = Math.min(state.wakeAt ?? Infinity, at);
}
