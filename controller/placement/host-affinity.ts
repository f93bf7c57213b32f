// Host affinity, with the meaning of Kubernetes nodeAffinity: required terms are ORed, the requirements
// inside a term are ANDed; preferred terms add their weight (1–100) to every host they match.

import type { HostAffinityTerm, VmPlacement } from "../api/types.ts";
import { selectorIsEmpty, selectorMatches, selectorSignature, type Labels } from "../api/selectors.ts";
import type { HostTable } from "./hosts.ts";

export const HOST_AFFINITY_MISMATCH = "didn't match host affinity";

/** As a nodeSelectorTerm: a term with no requirement matches no host (it is not a wildcard). */
export function hostTermMatches(term: Readonly<HostAffinityTerm>, labels: Labels): boolean {
  return !selectorIsEmpty(term) && selectorMatches(term, labels);
}

/** Whether the host satisfies the required terms. No terms (or an empty list) means no requirement. */
export function requiredHostAffinityHolds(placement: Readonly<VmPlacement>, labels: Labels): boolean {
  const required = placement.hostAffinity?.required;
  if (required === undefined || required.length === 0) return true;
  return required.some((term) => hostTermMatches(term, labels));
}

/** A canonical text of the required terms, so requests with equal rules share their filter results. */
export function requiredHostAffinitySignature(placement: Readonly<VmPlacement>): string {
  const required = placement.hostAffinity?.required ?? [];
  return JSON.stringify(required.map((term) => selectorSignature(term)).sort());
}

/** Σ weights of the preferred terms the host matches (the raw NodeAffinity score of kube-scheduler). */
export function preferredHostAffinityWeight(placement: Readonly<VmPlacement>, labels: Labels): number {
  let sum = 0;
  for (const { weight, preference } of placement.hostAffinity?.preferred ?? []) {
    if (hostTermMatches(preference, labels)) sum += weight;
  }
  return sum;
}

export type PreferenceCache = Map<string, Float64Array>;

/**
 * The preferred host affinity weight of every host (by host index) for these preferences, or undefined
 * when there are none. Computed once per batch for each distinct set of preferences.
 */
export function preferredHostWeights(table: HostTable, placement: Readonly<VmPlacement>, cache: PreferenceCache): Float64Array | undefined {
  const preferred = placement.hostAffinity?.preferred ?? [];
  if (preferred.length === 0) return undefined;
  const key = JSON.stringify(preferred.map(({ weight, preference }) => [weight, selectorSignature(preference)]).sort());
  const known = cache.get(key);
  if (known !== undefined) return known;
  const weights = Float64Array.from(table.labels, (labels) => preferredHostAffinityWeight(placement, labels));
  cache.set(key, weights);
  return weights;
}
