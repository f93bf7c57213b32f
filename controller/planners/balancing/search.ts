// The next move of a balancing pass: greedy, one move at a time, each judged on the cluster the moves before
// it left. Every move the pass may make is rated by its gain (cost.ts: the imbalance it takes away, plus the
// preferred rules it repairs) and dropped when the gain is not worth its cost; among the moves within 5 % of
// the best gain, VMs of lower restart priority go first (higher-priority VMs are moved last), then the
// cheapest copy (DRS 7.x prefers moving smaller VMs for the same gain). The first of them that the placement
// code, admission control and the migration limits all allow is the move.
//
// Bounded for large clusters: load moves are looked for from the most loaded hosts to the least loaded
// (8 of each by CPU and by memory, 64 when those offer none), and at most 48 moves are verified per step.

import { byCodeUnits } from "../../api/selectors.ts";
import { cpuIncompatibility } from "../cluster/moves.ts";
import { maySend } from "../migration/slots.ts";
import { moveCost, moveGain, worth, type MoveCost } from "./cost.ts";
import { hostsAllowing } from "./guards.ts";
import { imbalanceAfterMove, imbalanceOf } from "./load.ts";
import type { Movable } from "./movable.ts";
import { hasPreferences, preferenceScore } from "./preferences.ts";
import { hasRoom, type BalancingWorld } from "./world.ts";

/** Gains closer than this are the same gain (rounding), and a drop in imbalance smaller than it is none. */
const EPSILON = 1e-9;
/** Moves whose gain is within this share of the best one are equally good: lower restart priority, then the cheaper copy, goes first. */
const GAIN_BAND = 0.05;
/** Hosts at each end of the load order searched for load moves in a large cluster, widened once when idle. */
const SEARCH_WIDTHS = [8, 64] as const;
const SMALL_CLUSTER = 32;
const MAX_VERIFIED = 48;
/** Hosts a VM with broken preferred rules is offered, best preference first. */
const REPAIR_TARGETS = 16;

export interface SearchLimits {
  /** The imbalance the threshold tolerates: below it, only moves repairing preferred rules are made. */
  target: number;
  /** No move may leave the cluster above this imbalance: the larger of where the pass began and the target. */
  ceiling: number;
  /** The least gain per unit of cost (cost.ts). */
  floor: number;
  /** Whether the move takes a migration slot now (Automatic, approvals) or is only recommended (Manual). */
  useSlots: boolean;
}

export interface PlannedMove {
  mover: Movable;
  from: string;
  to: string;
  before: number;
  after: number;
  /** How much better its preferred rules hold on the target than on the source. */
  preference: number;
  gain: number;
  cost: MoveCost;
}

/** The best move now, or undefined when no move is allowed and worth making. */
export function nextMove(world: BalancingWorld, limits: Readonly<SearchLimits>): PlannedMove | undefined {
  const widths = world.loads.hosts.length <= SMALL_CLUSTER ? [world.loads.hosts.length] : SEARCH_WIDTHS;
  for (const width of widths) {
    const candidates = rated(world, limits, width);
    const move = firstAllowed(world, candidates);
    if (move !== undefined) return move;
  }
  return undefined;
}

/** Judges one move as an approval asks for it: allowed, and lowering imbalance or repairing preferred rules. */
export function approvedMove(world: BalancingWorld, mover: Readonly<Movable>, to: string): PlannedMove | undefined {
  const rating = { before: imbalanceOf(world.loads), limits: { target: -Infinity, ceiling: Infinity, floor: -Infinity, useSlots: true } };
  const move = rate(world, mover, to, rating);
  return move !== undefined && allowed(world, move, new Map()) ? move : undefined;
}

/** What every move of one step is rated against: the imbalance now, and the pass's limits. */
interface Rating {
  before: number;
  limits: Readonly<SearchLimits>;
}

/** Every move worth making among the searched hosts, best gain first. */
function rated(world: BalancingWorld, limits: Readonly<SearchLimits>, width: number): PlannedMove[] {
  const rating: Rating = { before: imbalanceOf(world.loads), limits };
  const moves = new Map<string, PlannedMove>();
  const consider = (mover: Movable, targets: Iterable<string>): void => {
    for (const to of targets) {
      const key = `${mover.id}\u0000${to}`;
      if (moves.has(key)) continue;
      const move = rate(world, mover, to, rating);
      if (move !== undefined) moves.set(key, move);
    }
  };
  if (rating.before > limits.target + EPSILON) {
    const { sources, targets } = searchedHosts(world, width);
    for (const mover of world.movable.values()) if (sources.has(mover.host) && mayTry(world, mover)) consider(mover, targets);
  }
  for (const mover of world.movable.values()) {
    if (mayTry(world, mover) && hasPreferences(mover.request.placement)) consider(mover, repairTargets(world, mover));
  }
  return [...moves.values()].sort((a, b) => b.gain - a.gain || a.mover.rank - b.mover.rank || byCodeUnits(a.mover.id, b.mover.id) || byCodeUnits(a.to, b.to));
}

function mayTry(world: Readonly<BalancingWorld>, mover: Readonly<Movable>): boolean {
  return mover.heldUntil === undefined && !world.moved.has(mover.id);
}

/** A move rated, or undefined when it cannot be made, is not worth it, or leaves the cluster less balanced than allowed. */
function rate(world: BalancingWorld, mover: Movable, to: string, rating: Rating): PlannedMove | undefined {
  const ends = reachable(world, mover, to, rating.limits.useSlots);
  if (ends === undefined) return undefined;
  const { before, limits } = rating;
  const after = imbalanceAfterMove(world.loads, ends.from, ends.to, mover.demand);
  const preference = preferenceDelta(world, mover, to);
  // A load move must lower imbalance while it is above target; a repair may raise it up to the ceiling.
  if (after > limits.ceiling + EPSILON) return undefined;
  if (preference <= 0 && !(before > limits.target + EPSILON && after < before - EPSILON)) return undefined;
  const gain = moveGain(world.loads.hosts.length, before, after, preference);
  const cost = costOf(world, mover);
  if (gain <= EPSILON || cost.fails !== undefined || worth(gain, cost, world.meanHostMemoryMiB) < limits.floor) return undefined;
  return { mover, from: mover.host, to, before, after, preference, gain, cost };
}

/**
 * The load-model indices of the move's ends, when the move can be made at all: another host that takes
 * VMs, a migration slot on the source (when slots count), room at the worst instant, a CPU for the guest.
 */
function reachable(world: BalancingWorld, mover: Readonly<Movable>, to: string, useSlots: boolean): { from: number; to: number } | undefined {
  const from = world.loads.index.get(mover.host);
  const target = world.loads.index.get(to);
  const host = world.hostsByName.get(to);
  if (to === mover.host || from === undefined || target === undefined || host === undefined) return undefined;
  if (useSlots && !maySend(world.slots, mover.host)) return undefined;
  if (!hasRoom(world, host, mover.request) || !guestRunsOn(world, mover, to)) return undefined;
  return { from, to: target };
}

/** The first move, in band order, that required rules, admission control and the migration limits allow. */
function firstAllowed(world: BalancingWorld, moves: readonly PlannedMove[]): PlannedMove | undefined {
  const fits = new Map<string, Set<string>>();
  let verified = 0;
  let start = 0;
  while (start < moves.length && verified < MAX_VERIFIED) {
    const best = moves[start]!.gain;
    let end = start;
    while (end < moves.length && moves[end]!.gain >= best * (1 - GAIN_BAND)) end++;
    const band = moves.slice(start, end).sort(bandOrder);
    for (const move of band) {
      if (verified++ >= MAX_VERIFIED) break;
      if (allowed(world, move, fits, moves)) return move;
    }
    start = end;
  }
  return undefined;
}

/** Within a band of equal gain: lower restart priority first, then the cheaper copy, then by name. */
function bandOrder(a: PlannedMove, b: PlannedMove): number {
  return a.mover.rank - b.mover.rank || a.cost.weighedMiB - b.cost.weighedMiB || byCodeUnits(a.mover.id, b.mover.id) || byCodeUnits(a.to, b.to);
}

/**
 * Whether the placement code lets the VM onto the target with every migration of the pass held on both
 * ends, and admission control still holds once it is there. The placement code is asked once per VM, for
 * every target the step rated for it.
 */
function allowed(world: BalancingWorld, move: PlannedMove, fits: Map<string, Set<string>>, all: readonly PlannedMove[] = [move]): boolean {
  let hosts = fits.get(move.mover.id);
  if (hosts === undefined) {
    const targets = [...new Set(all.filter((m) => m.mover.id === move.mover.id).map((m) => m.to))];
    hosts = hostsAllowing(world.snapshot, [...world.placed, ...world.reservations], move.mover.request, targets);
    fits.set(move.mover.id, hosts);
  }
  if (!hosts.has(move.to)) return false;
  return world.admission(() => world.placed.map((vm) => (vm.id === move.mover.id && vm.host === move.from ? { ...vm, host: move.to } : vm)));
}

/** The `width` most loaded hosts by CPU and by memory, and the `width` least loaded. */
function searchedHosts(world: Readonly<BalancingWorld>, width: number): { sources: Set<string>; targets: string[] } {
  const { hosts, cpu, memory } = world.loads;
  const order = (values: Float64Array): number[] => hosts.map((_, i) => i).sort((a, b) => (values[b] ?? 0) - (values[a] ?? 0) || a - b);
  const byCpu = order(cpu.values);
  const byMemory = order(memory.values);
  const name = (i: number): string => hosts[i]!.name;
  const sources = new Set([...byCpu.slice(0, width), ...byMemory.slice(0, width)].map(name));
  const targets = [...new Set([...byCpu.slice(-width), ...byMemory.slice(-width)].map(name))];
  return { sources, targets };
}

/** The hosts where a VM's preferred rules would hold better than where it runs, best first; none when they hold. */
function repairTargets(world: BalancingWorld, mover: Readonly<Movable>): string[] {
  const placement = mover.request.placement;
  const self = world.preferences.residents.get(mover.id);
  if (self === undefined) return [];
  const here = preferenceScore(world.preferences, self, placement, mover.host);
  if (here >= bestPossible(placement)) return [];
  const better: { host: string; score: number }[] = [];
  for (const host of world.loads.hosts) {
    const score = preferenceScore(world.preferences, self, placement, host.name);
    if (score > here) better.push({ host: host.name, score });
  }
  return better.sort((a, b) => b.score - a.score || byCodeUnits(a.host, b.host)).slice(0, REPAIR_TARGETS).map((b) => b.host);
}

/** The score of a host matching every preferred host term, with every preferred affinity met and no anti-affinity broken. */
function bestPossible(placement: Readonly<Movable["request"]["placement"]>): number {
  const sum = (terms: readonly { weight: number }[] | undefined): number => (terms ?? []).reduce((s, t) => s + t.weight, 0);
  return sum(placement.hostAffinity?.preferred) + sum(placement.vmAffinity?.preferred);
}

function preferenceDelta(world: BalancingWorld, mover: Readonly<Movable>, to: string): number {
  if (!hasPreferences(mover.request.placement)) return 0;
  const self = world.preferences.residents.get(mover.id);
  if (self === undefined) return 0;
  const placement = mover.request.placement;
  return preferenceScore(world.preferences, self, placement, to) - preferenceScore(world.preferences, self, placement, mover.host);
}

function costOf(world: BalancingWorld, mover: Readonly<Movable>): MoveCost {
  let cost = world.costs.get(mover.id);
  if (cost === undefined) {
    cost = moveCost(world.cluster, mover.facts.vm, mover.request.memoryMiB);
    world.costs.set(mover.id, cost);
  }
  return cost;
}

/** Whether the target's CPU can run the guest as it runs now (same vendor, every feature it sees). */
function guestRunsOn(world: Readonly<BalancingWorld>, mover: Readonly<Movable>, to: string): boolean {
  const target = world.hostFacts.get(to);
  return target !== undefined && cpuIncompatibility(mover.facts, mover.facts.instanceHost, target) === undefined;
}

