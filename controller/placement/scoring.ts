// Filtering and scoring one request against the current state of a batch.
//
// The score of a host is the sum of three parts, each normalised to 0–100 over the hosts that fit, as
// kube-scheduler combines its score plugins: the strategy's resource score (weight 1), preferred host
// affinity (weight 2, Σ matching weights / the best host's) and preferred VM affinity (weight 2, Σ weight ×
// matching VMs in the domain, min–max normalised). The weights are kube-scheduler's defaults for
// NodeResourcesFit, NodeAffinity and InterPodAffinity: a stated preference outweighs resource balance.
// Hosts are visited in name order and only a strictly higher score displaces the best, so ties go to
// the first name.

import type { PlacementStrategy } from "../api/types.ts";
import { capacityReason, fraction, resourceScore, type Allocation } from "./capacity.ts";
import type { StaticVerdict } from "./host-filters.ts";
import type { HostTable } from "./hosts.ts";
import type { VmRequest } from "./types.ts";
import { preferredVmAffinityWeight, vmRulesReason, type VmRules } from "./vm-affinity.ts";

export const RESOURCE_WEIGHT = 1;
export const HOST_AFFINITY_WEIGHT = 2;
export const VM_AFFINITY_WEIGHT = 2;

/** Everything needed to judge one request against the batch as it stands. */
export interface RequestInState {
  table: HostTable;
  allocation: Allocation;
  strategy: PlacementStrategy;
  request: Readonly<VmRequest>;
  verdict: StaticVerdict;
  /** Preferred host affinity weight by host index, when the request states preferences. */
  hostPreferences: Float64Array | undefined;
  rules: VmRules | undefined;
}

/** Buffers reused from request to request, so judging a host allocates nothing. */
export interface Scratch {
  hosts: Int32Array;
  scores: Float64Array;
  hostWeights: Float64Array;
  vmWeights: Float64Array;
}

export function scratchFor(hostCount: number): Scratch {
  return {
    hosts: new Int32Array(hostCount),
    scores: new Float64Array(hostCount),
    hostWeights: new Float64Array(hostCount),
    vmWeights: new Float64Array(hostCount),
  };
}

/** Why `host` cannot take the request now (the first reason, in filter order), or undefined if it can. */
export function rejectionOf(state: RequestInState, host: number): string | undefined {
  return (
    state.verdict.reasons[host] ??
    capacityReason(state.table, state.allocation, host, state.request.cpu, state.request.memoryMiB) ??
    (state.rules === undefined ? undefined : vmRulesReason(state.rules, host))
  );
}

/** Scores every host that fits into `scratch` (hosts[i], scores[i], in name order); returns how many fit. */
export function scoreFittingHosts(state: RequestInState, scratch: Scratch): number {
  const { table, allocation, strategy, request, rules } = state;
  const { cpu, memoryMiB } = request;
  const eligible = state.verdict.eligible;
  // The hot loop of placement: typed arrays read directly, nothing allocated per host. The capacity test
  // is capacityReason's, written out.
  const { memoryCapacity, cpuCapacity } = table;
  const memoryUsed = allocation.memoryMiB;
  const cpuUsed = allocation.cpu;
  const hostWeights = state.hostPreferences;
  const preferVms = rules !== undefined && rules.preferred.length > 0;
  let fitting = 0;
  let maxHostWeight = 0;
  let minVmWeight = Infinity;
  let maxVmWeight = -Infinity;
  for (let i = 0; i < eligible.length; i++) {
    const host = eligible[i] ?? 0;
    const memoryAfter = (memoryUsed[host] ?? 0) + memoryMiB;
    const memoryLimit = memoryCapacity[host] ?? 0;
    if (memoryAfter > memoryLimit) continue;
    const cpuAfter = (cpuUsed[host] ?? 0) + cpu;
    const cpuLimit = cpuCapacity[host] ?? 0;
    if (cpuAfter > cpuLimit) continue;
    if (rules !== undefined && vmRulesReason(rules, host) !== undefined) continue;
    scratch.hosts[fitting] = host;
    scratch.scores[fitting] = RESOURCE_WEIGHT * resourceScore(strategy, table, allocation, host, fraction(memoryAfter, memoryLimit), fraction(cpuAfter, cpuLimit));
    if (hostWeights !== undefined) {
      const weight = hostWeights[host] ?? 0;
      scratch.hostWeights[fitting] = weight;
      if (weight > maxHostWeight) maxHostWeight = weight;
    }
    if (preferVms) {
      const weight = preferredVmAffinityWeight(rules, host);
      scratch.vmWeights[fitting] = weight;
      if (weight < minVmWeight) minVmWeight = weight;
      if (weight > maxVmWeight) maxVmWeight = weight;
    }
    fitting++;
  }
  if (maxHostWeight > 0) {
    for (let i = 0; i < fitting; i++) {
      scratch.scores[i] = (scratch.scores[i] ?? 0) + (HOST_AFFINITY_WEIGHT * 100 * (scratch.hostWeights[i] ?? 0)) / maxHostWeight;
    }
  }
  if (maxVmWeight > minVmWeight) {
    const spread = maxVmWeight - minVmWeight;
    for (let i = 0; i < fitting; i++) {
      scratch.scores[i] = (scratch.scores[i] ?? 0) + (VM_AFFINITY_WEIGHT * 100 * ((scratch.vmWeights[i] ?? 0) - minVmWeight)) / spread;
    }
  }
  return fitting;
}

/** The best host for the request now and its score, or undefined when no host fits. */
export function bestHost(state: RequestInState, scratch: Scratch): { host: number; score: number } | undefined {
  const fitting = scoreFittingHosts(state, scratch);
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < fitting; i++) {
    const score = scratch.scores[i] ?? -Infinity;
    if (score > bestScore) {
      bestScore = score;
      best = scratch.hosts[i] ?? -1;
    }
  }
  return best < 0 ? undefined : { host: best, score: bestScore };
}

/** Every host that fits, best first (ties by name). */
export function rankedHosts(state: RequestInState, scratch: Scratch): { host: number; score: number }[] {
  const fitting = scoreFittingHosts(state, scratch);
  const ranked = Array.from({ length: fitting }, (_, i) => ({ host: scratch.hosts[i] ?? 0, score: scratch.scores[i] ?? 0 }));
  return ranked.sort((a, b) => b.score - a.score || a.host - b.host);
}

/** How many hosts each reason rejects (each host under its first reason only). */
export function rejectionCounts(state: RequestInState): Record<string, number> {
  // A Map first: a reason is free text (a host's `unavailable`), and "__proto__" must stay a plain key.
  const counts = new Map<string, number>();
  for (let host = 0; host < state.table.hosts.length; host++) {
    const reason = rejectionOf(state, host);
    if (reason !== undefined) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return Object.fromEntries(counts);
}
