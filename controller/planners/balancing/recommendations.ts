// A balancing move as a person or the engine reads it: a stable id (the same move keeps its id from pass to
// pass, so an approval finds it), what it gains and costs, and why, in words.

import { createHash } from "node:crypto";
import type { Recommendation } from "../cluster/types.ts";
import type { PlannedMove } from "./search.ts";

/** A short hash of the VM, its source and its target: stable while the same move is recommended. */
export function recommendationId(vm: string, from: string, to: string): string {
  return createHash("sha256").update(`${vm}\n${from}\n${to}`).digest("hex").slice(0, 12);
}

export function recommendationOf(move: Readonly<PlannedMove>, target: number): Recommendation {
  return {
    id: recommendationId(move.mover.id, move.from, move.to),
    vm: move.mover.id,
    from: move.from,
    to: move.to,
    gain: round(move.before - move.after),
    costMiB: move.cost.transferMiB,
    reason: moveReason(move, target),
  };
}

/** Why the move is made, in one line: the imbalance before and after, the rules it repairs, what it copies. */
export function moveReason(move: Readonly<PlannedMove>, target: number): string {
  const load = `imbalance ${fixed(move.before)} → ${fixed(move.after)} (target ${fixed(target)})`;
  const rules = move.preference > 0 ? `; its preferred rules hold better on ${move.to} (+${move.preference})` : "";
  const copy = `; copies about ${move.cost.transferMiB} MiB, pause about ${move.cost.downtimeMs} ms`;
  return `balancing ${move.from} → ${move.to}: ${load}${rules}${copy}`;
}

function round(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

function fixed(n: number): string {
  return n.toFixed(3);
}
