// Required VM anti-affinity broken behind Vireo's back (a VM moved by hand next to one it must avoid) is
// drift like any other forbidden placement. Two VMs break the rule together, so exactly one of them must
// move: the one whose id sorts later, so that both VMs' reconciles agree without talking to each other.

import type { VmAffinityTerm } from "../api/types.ts";
import { selectorMatches } from "../api/selectors.ts";

export interface RunningVm {
  id: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  host: string;
  /** The host's labels: the topology keys the terms refer to. */
  hostLabels: Readonly<Record<string, string>>;
  antiAffinity: readonly VmAffinityTerm[];
}

/**
 * Why `self` must leave its host for required VM anti-affinity, or undefined. `neighbours` are the VMs
 * running on other hosts or the same one; only those in a shared topology domain count. Either VM's
 * terms count (the rule binds both ways, as in placement).
 */
export function antiAffinityConflict(self: Readonly<RunningVm>, neighbours: readonly Readonly<RunningVm>[]): string | undefined {
  for (const other of neighbours) {
    if (other.id === self.id || other.id > self.id) continue;
    const term = breaking(self, other) ?? breaking(other, self);
    if (term) return `VM anti-affinity with ${other.id} on host ${other.host} (${term.topologyKey}=${self.hostLabels[term.topologyKey]})`;
  }
  return undefined;
}

/** The term of `a` that `b` breaks by sharing a's topology domain, if any. */
function breaking(a: Readonly<RunningVm>, b: Readonly<RunningVm>): VmAffinityTerm | undefined {
  return a.antiAffinity.find((term) => {
    const value = a.hostLabels[term.topologyKey];
    if (value === undefined || b.hostLabels[term.topologyKey] !== value) return false;
    const namespaces = term.namespaces && term.namespaces.length > 0 ? term.namespaces : [a.namespace];
    return namespaces.includes(b.namespace) && selectorMatches(term.labelSelector, b.labels);
  });
}
