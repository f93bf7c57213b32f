// What fault-tolerant secondaries cost the hosts, and what the hosts report of them: the vCPUs and memory a
// secondary holds on its host, and each host's FT logging link (BEHAVIOUR.md, Replication and fault
// tolerance: a dedicated link), which the lockstep traffic and the copies that make new secondaries share.
// A primary whose link cannot keep up is slowed, as vSphere FT slows it. All of it is derived from the
// records when asked for, so a pair in lockstep costs no event.

import { FT_BASE_LAG_MS } from "../../core/fault-tolerance.ts";
import type { SecondaryObservation, SwitchoverObservation } from "../../core/fault-tolerance.ts";
import { dirtyRateOf } from "../../core/migration.ts";
import type { HostRecord, SecondaryRecord, SwitchoverRecord, World } from "./world.ts";

/**
 * A copy gets at least this share of a link that the lockstep traffic saturates, so its rounds still end (a
 * choice: a TCP flow beside others is slowed, never starved outright).
 */
export const MIN_COPY_SHARE = 0.1;

/** How the logging link treats one primary in lockstep: the share of its time it loses, and the lag. */
export interface LockstepFigures {
  /** 0 while the link keeps up; else 1 − bandwidth / need, on the worse of its two hosts' links. */
  slowdown: number;
  lagMs: number;
}

const KEEPING_UP: LockstepFigures = Object.freeze({ slowdown: 0, lagMs: FT_BASE_LAG_MS });

/** A secondary that holds its host's resources: being made, or in lockstep. A failed one holds nothing. */
export function isLive(rec: SecondaryRecord): boolean {
  return rec.state !== "Failed";
}

/** The hosts holding a live secondary of the VM: its own, and during a move the one it replaces. */
export function secondaryHosts(rec: SecondaryRecord): string[] {
  if (!isLive(rec)) return [];
  return rec.replacing ? [rec.host, rec.replacing.host] : [rec.host];
}

/**
 * Whether two hosts' FT logging link carries traffic: both up, neither cut off from the network, and not
 * on opposite sides of a partition (the partitioned hosts reach each other only, faults.ts).
 */
export function loggingLinkUp(a: HostRecord, b: HostRecord): boolean {
  if (a.crashedAt !== undefined || b.crashedAt !== undefined) return false;
  if (a.isolatedAt !== undefined || b.isolatedAt !== undefined) return false;
  return (a.partitionedAt === undefined) === (b.partitionedAt === undefined);
}

/**
 * What the host holds for the secondaries on it, as if they ran there: their vCPUs and memory, and the
 * memory in use (what a copy has sent so far, all of it once in lockstep).
 */
export function heldBySecondaries(world: World, host: string): { cpu: number; memoryMiB: number; usedMemoryMiB: number } {
  const held = { cpu: 0, memoryMiB: 0, usedMemoryMiB: 0 };
  for (const rec of world.secondaries.values()) {
    if (!secondaryHosts(rec).includes(host)) continue;
    held.cpu += rec.cpu;
    held.memoryMiB += rec.memoryMiB;
    const copying = rec.host === host && rec.copy !== undefined;
    held.usedMemoryMiB += copying ? Math.min(rec.memoryMiB, Math.round(rec.copy!.transferredMiB)) : rec.memoryMiB;
  }
  return held;
}

interface LockstepPair {
  vm: string;
  primaryHost: string;
  secondaryHost: string;
  bandwidthMiBps: number;
  rateMiBps: number;
}

/**
 * Every primary and secondary exchanging lockstep traffic: each secondary in lockstep with a running primary
 * it still hears, and the one a move replaces. A primary's traffic is how fast it dirties memory.
 */
function lockstepPairs(world: World): LockstepPair[] {
  const pairs: LockstepPair[] = [];
  for (const rec of world.secondaries.values()) {
    const vm = world.vms.get(rec.vm);
    if (!vm || vm.power !== "Running") continue;
    const pair = (host: string, bandwidthMiBps: number) => ({ vm: rec.vm, primaryHost: vm.host, secondaryHost: host, bandwidthMiBps, rateMiBps: dirtyRateOf(vm.config.workload) });
    if (rec.state === "Lockstep" && rec.primaryLostAt === undefined) pairs.push(pair(rec.host, rec.settings.loggingBandwidthMiBps));
    if (rec.replacing) pairs.push(pair(rec.replacing.host, rec.replacing.settings.loggingBandwidthMiBps));
  }
  return pairs;
}

/** Each host's lockstep traffic, MiB/s: the dirty rates of the primaries and of the secondaries on it. */
export function loggingNeeds(world: World): Map<string, number> {
  const needs = new Map<string, number>();
  for (const pair of lockstepPairs(world)) {
    for (const host of [pair.primaryHost, pair.secondaryHost]) needs.set(host, (needs.get(host) ?? 0) + pair.rateMiBps);
  }
  return needs;
}

/**
 * Per VM in lockstep, how its logging link treats it. A link whose need passes its bandwidth slows each
 * primary on it to fit (1 − bandwidth / need, the worse of the pair's two hosts; each VM's own settings
 * give its link's bandwidth, the cluster's in practice), and the lag grows as the need over the bandwidth.
 * Empty without secondaries, so a fleet without fault tolerance pays nothing for it.
 */
export function lockstepLoad(world: World): Map<string, LockstepFigures> {
  const load = new Map<string, LockstepFigures>();
  if (world.secondaries.size === 0) return load;
  const pairs = lockstepPairs(world);
  const needs = loggingNeeds(world);
  for (const pair of pairs) {
    const need = Math.max(needs.get(pair.primaryHost) ?? 0, needs.get(pair.secondaryHost) ?? 0);
    const ratio = need / pair.bandwidthMiBps;
    const figures: LockstepFigures = ratio > 1 ? { slowdown: 1 - 1 / ratio, lagMs: FT_BASE_LAG_MS * ratio } : KEEPING_UP;
    const worse = load.get(pair.vm);
    if (!worse || figures.slowdown > worse.slowdown) load.set(pair.vm, figures);
  }
  return load;
}

/** How many copies use each host's logging link. */
export function copiesPerHost(world: World): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rec of world.secondaries.values()) {
    if (!rec.copy) continue;
    for (const host of [rec.copy.source, rec.copy.target]) counts.set(host, (counts.get(host) ?? 0) + 1);
  }
  return counts;
}

/**
 * The bandwidth a secondary's copy gets now: the copy settings' own cap, and on each of its two hosts' links
 * an even share, among the copies there, of what the lockstep traffic leaves (at least MIN_COPY_SHARE of
 * the link): lockstep goes first, as it holds the primaries back when it cannot keep up.
 */
export function copyShare(rec: SecondaryRecord, needs: ReadonlyMap<string, number>, copies: ReadonlyMap<string, number>): number {
  const m = rec.copy;
  if (!m) return 0;
  const link = rec.settings.loggingBandwidthMiBps;
  const shareOn = (host: string) => Math.max(link - (needs.get(host) ?? 0), link * MIN_COPY_SHARE) / Math.max(1, copies.get(host) ?? 0);
  return Math.min(m.settings.bandwidthMiBps, shareOn(m.source), shareOn(m.target));
}

export function secondaryObservation(rec: SecondaryRecord, load: ReadonlyMap<string, LockstepFigures>, now: number): SecondaryObservation {
  const figures = load.get(rec.vm) ?? KEEPING_UP;
  // A secondary that stopped hearing from its primary trails it by as long as that has lasted.
  const lagMs = rec.primaryLostAt === undefined ? figures.lagMs : Math.max(figures.lagMs, now - rec.primaryLostAt);
  return {
    vm: rec.vm,
    key: rec.key,
    host: rec.host,
    primaryHost: rec.primaryHost,
    state: rec.state,
    since: rec.since,
    ...(rec.copy ? { copiedMiB: thousandths(rec.copy.transferredMiB), remainingMiB: thousandths(rec.copy.remainingMiB) } : {}),
    ...(rec.state === "Lockstep" ? { lagMs: thousandths(lagMs), slowdownPercent: thousandths(figures.slowdown * 100) } : {}),
    ...(rec.reason !== undefined ? { reason: rec.reason } : {}),
    cpu: rec.cpu,
    memoryMiB: rec.memoryMiB,
  };
}

export function switchoverObservation(s: SwitchoverRecord): SwitchoverObservation {
  return { vm: s.vm, from: s.from, to: s.to, primaryLostAt: s.primaryLostAt, at: s.at };
}

/** Figures to a thousandth: the model's floating point is not news to an observer. */
function thousandths(n: number): number {
  return Math.round(n * 1000) / 1000;
}
