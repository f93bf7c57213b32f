// Stage 6, balancing (DRS): the last stage, so it moves only what already runs and no earlier stage dealt
// with, on the capacity every start and move before it took. A pass is due every `intervalSeconds`; none
// runs while HA restarts VMs or a host of the cluster is down or unheard from (the load then says nothing
// about where VMs belong). A pass measures the imbalance (balancing/load.ts), and while it is above what the
// threshold tolerates, or a preferred rule is broken, picks moves one at a time (balancing/search.ts).
// Automatic makes them: live migrations, each VM then held down (balancing/hold-down.ts). Manual lists them
// as recommendations, and makes those a person approved (`approvedRecommendations`, by id) once they are
// still allowed and still help. See docs/decisions/0009-balancing.md.

import { balancesLoad, imbalanceOf, targetImbalance } from "../balancing/load.ts";
import { worthFloor } from "../balancing/cost.ts";
import { holdDownAfterMove, liveHoldDowns } from "../balancing/hold-down.ts";
import { moveReason, recommendationOf } from "../balancing/recommendations.ts";
import { approvedMove, nextMove, type PlannedMove, type SearchLimits } from "../balancing/search.ts";
import { balancingWorld, recordMove, type BalancingWorld } from "../balancing/world.ts";
import { moveLive } from "./moves.ts";
import { moveSecondary } from "./fault-tolerance.ts";
import { primaryOf } from "../ha/fault-tolerance.ts";
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
  const next = nextPassAt(s);
  const due = next <= s.now;
  const approved = approvals(s);
  wake(state, due ? s.now + spec.intervalSeconds * 1000 : next);
  if (!due && approved.length === 0) return {};

  const skip = whyNoPass(s, state);
  const holdDowns = liveHoldDowns(s.memory.balancing.holdDowns, s.now);
  const world = balancingWorld(s, state, holdDowns);
  const pass: Pass = { s, state, world, holdDowns, imbalance: imbalanceOf(world.loads), target: targetImbalance(spec.threshold, world.loads.hosts.length) };
  const made = skip === undefined ? applyApproved(pass, approved) : 0;
  if (!due) return made > 0 ? { holdDowns } : {};
  if (skip !== undefined) return { report: { imbalance: pass.imbalance, target: pass.target, projected: pass.imbalance, recommendations: [], reason: skip } };
  return { report: runPass(pass), holdDowns };
}

/** The recommendations a person approved: Manual only (Automatic makes its own moves). */
function approvals(s: Readonly<ClusterSituation>): readonly string[] {
  return s.cluster.spec.balancing.mode === "Manual" ? s.approvedRecommendations ?? [] : [];
}

/** When the next pass is due: `intervalSeconds` after the last, at once when there was none. */
export function nextPassAt(s: Readonly<ClusterSituation>): number {
  const last = s.memory.balancing.lastPassAt;
  return last === undefined ? s.now : last + s.cluster.spec.balancing.intervalSeconds * 1000;
}

/** One balancing pass and what it made or recommended. */
interface Pass {
  s: Readonly<ClusterSituation>;
  state: StageState;
  world: BalancingWorld;
  holdDowns: Map<string, HoldDown>;
  /** The imbalance the pass found, and what the threshold tolerates. */
  imbalance: number;
  target: number;
}

/** Moves picked one at a time until none is worth making: made (Automatic) or recommended (Manual). */
function runPass(pass: Pass): BalancingReport {
  const { s, world, imbalance, target } = pass;
  const { threshold, mode } = s.cluster.spec.balancing;
  const automatic = mode === "Automatic";
  // Load moves lower the imbalance; a repair of a preferred rule may raise it, never past what the threshold
  // tolerates or, when the cluster is already beyond that, past where the pass found it.
  const limits: SearchLimits = { target, ceiling: Math.max(imbalance, target), floor: worthFloor(threshold), useSlots: automatic };
  const moves: PlannedMove[] = [];
  while (balancesLoad(threshold) && moves.length < (automatic ? MAX_MOVES_PER_PASS : MAX_RECOMMENDATIONS)) {
    const move = nextMove(world, limits);
    if (move === undefined) break;
    recordMove(world, move.mover, move.to, automatic);
    moves.push(move);
    if (automatic) migrate(pass, move, moveReason(move, target));
  }
  return {
    imbalance,
    target,
    passAt: s.now,
    projected: imbalanceOf(world.loads),
    recommendations: moves.map((m) => recommendationOf(m, target)),
    reason: passSummary(pass, moves.length),
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
function applyApproved(pass: Pass, approved: readonly string[]): number {
  if (approved.length === 0) return 0;
  const { s, world } = pass;
  const wanted = new Set(approved);
  let made = 0;
  const listed = s.cluster.status?.balancing?.recommendations ?? [];
  for (const recommendation of listed.filter((r) => wanted.has(r.id))) {
    const mover = world.movable.get(recommendation.vm);
    const move = mover?.host === recommendation.from && !world.moved.has(mover.id) ? approvedMove(world, mover, recommendation.to) : undefined;
    if (move === undefined) continue;
    recordMove(world, move.mover, move.to, true);
    migrate(pass, move, `approved recommendation ${recommendation.id}: ${moveReason(move, pass.target)}`);
    made++;
  }
  return made;
}

/** One live migration of the plan: the action, the VM's verdict, the move to record, its hold-down. */
function migrate(pass: Pass, move: Readonly<PlannedMove>, reason: string): void {
  const { s, state, holdDowns } = pass;
  const id = move.mover.id;
  if (primaryOf(id) !== undefined) {
    moveSecondary(s, state, move.mover.facts, move.to, `balancing: ${reason}`);
    holdDowns.set(id, holdDownAfterMove(holdDowns.get(id), s.now));
    return;
  }
  const key = `balance/${id}/${s.now}`;
  moveLive(s, state, move.mover.facts, move.to, "balancing", key, reason);
  state.moves.set(id, { stage: "balancing", key, target: move.to, startedAt: s.now, failures: 0 });
  holdDowns.set(id, holdDownAfterMove(holdDowns.get(id), s.now));
}

function passSummary(pass: Readonly<Pass>, moves: number): string {
  const { threshold, mode } = pass.s.cluster.spec.balancing;
  const figures = `imbalance ${pass.imbalance.toFixed(3)}, target ${pass.target.toFixed(3)}`;
  if (!balancesLoad(threshold)) return `threshold 1 takes mandatory moves only: balancing moves nothing (${figures})`;
  if (moves > 0) return `${moves} move${moves === 1 ? "" : "s"} ${mode === "Automatic" ? "begun" : "recommended"} (${figures})`;
  if (pass.imbalance <= pass.target) return `balanced (${figures})`;
  return `no move is allowed and worth its cost${mode === "Automatic" ? " within the migration limits" : ""} (${figures})`;
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
