// VM affinity and anti-affinity, with the meaning of Kubernetes inter-pod affinity: a term names the
// VMs it is about (label selector, in namespaces — the VM's own when none are given) and a topology key;
// a host's domain is the set of hosts sharing its value of that key.
//
// Rather than rescanning placed VMs for every host, the index keeps, for every (VM set, topology key) a
// rule names, how many VMs of the set run in each domain, and for every required anti-affinity term how
// many VMs holding it run in each domain (for symmetry). Placing a VM updates only the counters whose
// selector it matches. Counters are registered before anything is counted, so every count is complete.

import { labelValue, selectorMatches, selectorSignature, type Labels } from "../api/selectors.ts";
import type { LabelSelector, VmAffinityTerm } from "../api/types.ts";
import { topologyDomains, type HostTable, type TopologyDomains } from "./hosts.ts";
import type { VmRequest } from "./types.ts";

export const VM_AFFINITY_MISMATCH = "didn't match VM affinity";
export const VM_ANTI_AFFINITY = "VM anti-affinity";

/** How many VMs of one set (or holding one term) run in each domain of one topology key. */
export interface DomainCounts {
  domains: TopologyDomains;
  counts: Int32Array;
  /** Σ counts: the VMs counted on hosts that carry the key. */
  total: number;
}

/** VMs picked out by a selector within namespaces, counted by every topology key a rule pairs it with. */
interface VmSet {
  selector: LabelSelector;
  namespaces: ReadonlySet<string>;
  byKey: DomainCounts[];
}

interface Holders {
  selector: LabelSelector;
  namespaces: ReadonlySet<string>;
  counts: DomainCounts;
}

/** Items keyed by a selector, found from a VM's labels without trying every selector. */
interface SelectorLookup<T> {
  /** Selectors with matchLabels, filed under their first (key, value) pair: only VMs with it can match. */
  byPair: Map<string, Map<string, T[]>>;
  unfiled: T[];
}

export interface AffinityIndex {
  table: HostTable;
  sets: Map<string, VmSet>;
  setLookup: SelectorLookup<VmSet>;
  counters: Map<string, DomainCounts>;
  holders: Map<string, Holders>;
  holderLookup: SelectorLookup<Holders>;
  /** Set once counting has begun: a counter registered later would miss what was counted before it. */
  sealed: boolean;
}

/** A VM's labels and rules as the index needs them, whether it is placed already or being placed. */
export interface CountedVm {
  namespace: string;
  labels: Labels;
  antiAffinity?: readonly VmAffinityTerm[] | undefined;
}

export function emptyAffinityIndex(table: HostTable): AffinityIndex {
  return {
    table,
    sets: new Map(),
    setLookup: { byPair: new Map(), unfiled: [] },
    counters: new Map(),
    holders: new Map(),
    holderLookup: { byPair: new Map(), unfiled: [] },
    sealed: false,
  };
}

/** Makes the index count everything `request`'s rules will ask about. */
export function registerRules(index: AffinityIndex, request: Readonly<VmRequest>): void {
  const { vmAffinity, vmAntiAffinity } = request.placement;
  const terms = [
    ...(vmAffinity?.required ?? []),
    ...(vmAntiAffinity?.required ?? []),
    ...(vmAffinity?.preferred ?? []).map((p) => p.term),
    ...(vmAntiAffinity?.preferred ?? []).map((p) => p.term),
  ];
  for (const term of terms) domainCountsOf(index, term, request.namespace);
  registerHolders(index, request.namespace, vmAntiAffinity?.required);
}

/** Makes the index count the holders of these required anti-affinity terms. */
export function registerHolders(index: AffinityIndex, namespace: string, terms: readonly VmAffinityTerm[] | undefined): void {
  for (const term of terms ?? []) {
    const key = termKey(term, namespace);
    if (index.holders.has(key)) continue;
    assertOpen(index, key);
    const holders = { selector: term.labelSelector, namespaces: termNamespaces(term, namespace), counts: newCounts(index.table, term.topologyKey) };
    index.holders.set(key, holders);
    file(index.holderLookup, term.labelSelector, holders);
  }
}

/** Counts a VM now holding resources on `host` in every registered counter it belongs to. */
export function countVm(index: AffinityIndex, host: number, vm: Readonly<CountedVm>): void {
  index.sealed = true;
  forEachCandidate(index.setLookup, vm.labels, (set) => {
    if (!set.namespaces.has(vm.namespace) || !selectorMatches(set.selector, vm.labels)) return;
    for (const counts of set.byKey) increment(counts, host);
  });
  for (const term of vm.antiAffinity ?? []) {
    const holders = index.holders.get(termKey(term, vm.namespace));
    if (holders !== undefined) increment(holders.counts, host);
  }
}

/** The VM rules of one request, bound to the live counters of the index. */
export interface VmRules {
  affinity: DomainCounts[];
  /** The request's own required anti-affinity, then placed VMs' anti-affinity that matches the request. */
  antiAffinity: DomainCounts[];
  /** The first VM of a group with affinity to itself may start anywhere (as kube-scheduler allows). */
  affinityWaived: boolean;
  /** Weighted terms: positive weight for affinity, negative for anti-affinity. */
  preferred: { weight: number; counts: DomainCounts }[];
}

/** The rules `request` must obey now, or undefined when it has none (the common, fast case). */
export function vmRules(index: AffinityIndex, request: Readonly<VmRequest>): VmRules | undefined {
  const { vmAffinity, vmAntiAffinity } = request.placement;
  const affinityTerms = vmAffinity?.required ?? [];
  const affinity = affinityTerms.map((term) => domainCountsOf(index, term, request.namespace));
  const antiAffinity = (vmAntiAffinity?.required ?? []).map((term) => domainCountsOf(index, term, request.namespace));
  forEachCandidate(index.holderLookup, request.labels, (holders) => {
    if (holders.counts.total > 0 && holders.namespaces.has(request.namespace) && selectorMatches(holders.selector, request.labels)) {
      antiAffinity.push(holders.counts);
    }
  });
  const preferred = [
    ...(vmAffinity?.preferred ?? []).map((p) => ({ weight: p.weight, counts: domainCountsOf(index, p.term, request.namespace) })),
    ...(vmAntiAffinity?.preferred ?? []).map((p) => ({ weight: -p.weight, counts: domainCountsOf(index, p.term, request.namespace) })),
  ];
  if (affinity.length === 0 && antiAffinity.length === 0 && preferred.length === 0) return undefined;
  const affinityWaived =
    affinity.length > 0 &&
    affinity.every((counts) => counts.total === 0) &&
    affinityTerms.every((term) => termNamespaces(term, request.namespace).has(request.namespace) && selectorMatches(term.labelSelector, request.labels));
  return { affinity, antiAffinity, affinityWaived, preferred };
}

/**
 * Why the VM rules keep the request off `host`, or undefined when they allow it. A host without a term's
 * topology key is rejected by that term: its domain is unknown, so the rule cannot be shown to hold.
 */
export function vmRulesReason(rules: VmRules, host: number): string | undefined {
  for (const { domains, counts } of rules.affinity) {
    const domain = domains.domainOfHost[host] ?? -1;
    if (domain < 0 || (!rules.affinityWaived && (counts[domain] ?? 0) === 0)) return VM_AFFINITY_MISMATCH;
  }
  for (const { domains, counts } of rules.antiAffinity) {
    const domain = domains.domainOfHost[host] ?? -1;
    if (domain < 0 || (counts[domain] ?? 0) > 0) return VM_ANTI_AFFINITY;
  }
  return undefined;
}

/** Σ weight × matching VMs in the host's domain (the raw InterPodAffinity score of kube-scheduler). */
export function preferredVmAffinityWeight(rules: VmRules, host: number): number {
  let sum = 0;
  for (const { weight, counts } of rules.preferred) {
    const domain = counts.domains.domainOfHost[host] ?? -1;
    if (domain >= 0) sum += weight * (counts.counts[domain] ?? 0);
  }
  return sum;
}

export function hasVmRules(request: Readonly<VmRequest>): boolean {
  const { vmAffinity, vmAntiAffinity } = request.placement;
  return (vmAffinity?.required?.length ?? 0) > 0 || (vmAntiAffinity?.required?.length ?? 0) > 0;
}

function domainCountsOf(index: AffinityIndex, term: Readonly<VmAffinityTerm>, namespace: string): DomainCounts {
  const key = termKey(term, namespace);
  const known = index.counters.get(key);
  if (known !== undefined) return known;
  assertOpen(index, key);
  const setKey = setSignature(term.labelSelector, termNamespaces(term, namespace));
  let set = index.sets.get(setKey);
  if (set === undefined) {
    set = { selector: term.labelSelector, namespaces: termNamespaces(term, namespace), byKey: [] };
    index.sets.set(setKey, set);
    file(index.setLookup, term.labelSelector, set);
  }
  const counts = newCounts(index.table, term.topologyKey);
  set.byKey.push(counts);
  index.counters.set(key, counts);
  return counts;
}

function assertOpen(index: AffinityIndex, key: string): void {
  if (index.sealed) throw new Error(`VM affinity term ${JSON.stringify(key)} was registered after counting began`);
}

function newCounts(table: HostTable, topologyKey: string): DomainCounts {
  const domains = topologyDomains(table, topologyKey);
  return { domains, counts: new Int32Array(domains.values.length), total: 0 };
}

function increment(counts: DomainCounts, host: number): void {
  const domain = counts.domains.domainOfHost[host] ?? -1;
  if (domain < 0) return;
  counts.counts[domain] = (counts.counts[domain] ?? 0) + 1;
  counts.total += 1;
}

function termNamespaces(term: Readonly<VmAffinityTerm>, ownNamespace: string): ReadonlySet<string> {
  return new Set(term.namespaces !== undefined && term.namespaces.length > 0 ? term.namespaces : [ownNamespace]);
}

function setSignature(selector: Readonly<LabelSelector>, namespaces: ReadonlySet<string>): string {
  return `${selectorSignature(selector)}\u0000${JSON.stringify([...namespaces].sort())}`;
}

function termKey(term: Readonly<VmAffinityTerm>, namespace: string): string {
  return `${setSignature(term.labelSelector, termNamespaces(term, namespace))}\u0000${term.topologyKey}`;
}

function file<T>(lookup: SelectorLookup<T>, selector: Readonly<LabelSelector>, item: T): void {
  const matchLabels = selector.matchLabels ?? {};
  const key = Object.keys(matchLabels).sort()[0];
  if (key === undefined) {
    lookup.unfiled.push(item);
    return;
  }
  const value = matchLabels[key] ?? "";
  let byValue = lookup.byPair.get(key);
  if (byValue === undefined) lookup.byPair.set(key, (byValue = new Map()));
  const items = byValue.get(value);
  if (items === undefined) byValue.set(value, [item]);
  else items.push(item);
}

function forEachCandidate<T>(lookup: SelectorLookup<T>, labels: Labels, visit: (item: T) => void): void {
  for (const key in labels) {
    const byValue = lookup.byPair.get(key);
    if (byValue === undefined) continue;
    const value = labelValue(labels, key);
    const items = value === undefined ? undefined : byValue.get(value);
    if (items !== undefined) for (const item of items) visit(item);
  }
  for (const item of lookup.unfiled) visit(item);
}
