// How well a VM's preferred rules hold on a host: Σ weights of the preferred host affinity terms the host
// matches, + the weight of each preferred VM affinity term with a matching VM in the host's domain, − the
// weight of each preferred VM anti-affinity term with one (the VM's own terms; as kube-scheduler's raw
// scores, but counting a term once however many VMs match). A failover or a placement made when the cluster
// was short leaves preferred rules broken; balancing repairs them by the moves that raise this figure.

import { labelValue, selectorMatches, selectorSignature, type Labels } from "../../api/selectors.ts";
import { HOST_LABEL } from "../../api/types.ts";
import type { VmAffinityTerm, VmPlacement } from "../../api/types.ts";
import { preferredHostAffinityWeight } from "../../placement/host-affinity.ts";
import type { CandidateHost, PlacedVm } from "../../placement/index.ts";

/** How many VMs of one term's set run in each domain of its topology key, kept up to date move by move. */
interface TermCounts {
  term: VmAffinityTerm;
  namespaces: ReadonlySet<string>;
  byDomain: Map<string, number>;
}

export interface PreferenceIndex {
  hostLabels: ReadonlyMap<string, Labels>;
  /** Where each VM holding resources runs now (as the pass left it), with its labels. */
  residents: Map<string, PlacedVm>;
  /** VM ids by "key=value" of their labels: the VMs a matchLabels selector can pick. */
  byLabel: Map<string, string[]>;
  terms: Map<string, TermCounts>;
}

export function preferenceIndex(hosts: readonly CandidateHost[], placed: readonly PlacedVm[]): PreferenceIndex {
  const hostLabels = new Map(hosts.map((h) => [h.name, labelValue(h.labels, HOST_LABEL) === h.name ? h.labels : { ...h.labels, [HOST_LABEL]: h.name }]));
  const residents = new Map<string, PlacedVm>();
  const byLabel = new Map<string, string[]>();
  for (const vm of placed) {
    if (residents.has(vm.id)) continue;
    residents.set(vm.id, vm);
    for (const key of Object.keys(vm.labels)) {
      const pair = `${key}=${vm.labels[key]}`;
      const ids = byLabel.get(pair);
      if (ids === undefined) byLabel.set(pair, [vm.id]);
      else ids.push(vm.id);
    }
  }
  return { hostLabels, residents, byLabel, terms: new Map() };
}

/** Whether the VM states any preferred rule. */
export function hasPreferences(placement: Readonly<VmPlacement>): boolean {
  return (placement.hostAffinity?.preferred?.length ?? 0) + (placement.vmAffinity?.preferred?.length ?? 0) + (placement.vmAntiAffinity?.preferred?.length ?? 0) > 0;
}

/** How well the preferred rules of VM `vm` (now on `current`) would hold on `host`. */
export function preferenceScore(index: PreferenceIndex, vm: Readonly<PlacedVm>, placement: Readonly<VmPlacement>, host: string): number {
  const labels = index.hostLabels.get(host) ?? {};
  let score = preferredHostAffinityWeight(placement, labels);
  for (const { weight, term } of placement.vmAffinity?.preferred ?? []) {
    if (othersInDomain(index, vm, term, host) > 0) score += weight;
  }
  for (const { weight, term } of placement.vmAntiAffinity?.preferred ?? []) {
    if (othersInDomain(index, vm, term, host) > 0) score -= weight;
  }
  return score;
}

/** Records that `vm` now runs on `to`: every term counting it counts it in its new domain. */
export function movePreferences(index: PreferenceIndex, vmId: string, to: string): void {
  const vm = index.residents.get(vmId);
  if (vm === undefined) return;
  for (const counts of index.terms.values()) {
    if (!counts.namespaces.has(vm.namespace) || !selectorMatches(counts.term.labelSelector, vm.labels)) continue;
    adjust(counts.byDomain, domainOf(index, vm.host, counts.term.topologyKey), -1);
    adjust(counts.byDomain, domainOf(index, to, counts.term.topologyKey), 1);
  }
  index.residents.set(vmId, { ...vm, host: to });
}

/** VMs of the term's set in `host`'s domain, the VM itself left out. A host without the key has no domain: none. */
function othersInDomain(index: PreferenceIndex, vm: Readonly<PlacedVm>, term: Readonly<VmAffinityTerm>, host: string): number {
  const domain = domainOf(index, host, term.topologyKey);
  if (domain === undefined) return 0;
  const counts = termCounts(index, term, vm.namespace);
  const here = counts.byDomain.get(domain) ?? 0;
  const self = counts.namespaces.has(vm.namespace) && selectorMatches(term.labelSelector, vm.labels) && domainOf(index, index.residents.get(vm.id)?.host ?? vm.host, term.topologyKey) === domain;
  return here - (self ? 1 : 0);
}

function termCounts(index: PreferenceIndex, term: Readonly<VmAffinityTerm>, namespace: string): TermCounts {
  const namespaces = new Set(term.namespaces !== undefined && term.namespaces.length > 0 ? term.namespaces : [namespace]);
  const key = `${selectorSignature(term.labelSelector)}\u0000${[...namespaces].sort().join(",")}\u0000${term.topologyKey}`;
  const known = index.terms.get(key);
  if (known !== undefined) return known;
  const counts: TermCounts = { term, namespaces, byDomain: new Map() };
  for (const vm of candidatesOf(index, term)) {
    if (!namespaces.has(vm.namespace) || !selectorMatches(term.labelSelector, vm.labels)) continue;
    adjust(counts.byDomain, domainOf(index, vm.host, term.topologyKey), 1);
  }
  index.terms.set(key, counts);
  return counts;
}

/** The VMs a selector can match: those with its first matchLabels pair, or every VM when it has none. */
function candidatesOf(index: PreferenceIndex, term: Readonly<VmAffinityTerm>): Iterable<PlacedVm> {
  const matchLabels = term.labelSelector.matchLabels ?? {};
  const first = Object.keys(matchLabels).sort()[0];
  if (first === undefined) return index.residents.values();
  const ids = index.byLabel.get(`${first}=${matchLabels[first]}`) ?? [];
  return ids.flatMap((id) => {
    const vm = index.residents.get(id);
    return vm === undefined ? [] : [vm];
  });
}

function domainOf(index: PreferenceIndex, host: string, key: string): string | undefined {
  const labels = index.hostLabels.get(host);
  return labels === undefined ? undefined : labelValue(labels, key);
}

function adjust(counts: Map<string, number>, domain: string | undefined, by: number): void {
  if (domain === undefined) return;
  counts.set(domain, (counts.get(domain) ?? 0) + by);
}
