// Which labels a host is known by, and which HostCluster it belongs to: facts of the declared objects
// alone, used by placement, the planners and the engine alike.

import type { Host, HostCluster } from "./types.ts";
import { HOST_LABEL } from "./types.ts";
import { selectorMatches } from "./selectors.ts";

/** The labels a host is known by: its own, plus vireo.dev/host=<name> so the host works as a topology key. */
export function hostLabels(host: Readonly<Host>): Record<string, string> {
  return { ...(host.metadata.labels ?? {}), [HOST_LABEL]: host.metadata.name };
}

/** The HostCluster a host belongs to: the first (by name) whose selector matches it. */
export function clusterOf(host: Readonly<Host>, clusters: readonly HostCluster[]): HostCluster | undefined {
  const labels = hostLabels(host);
  const matching = clusters.filter((c) => selectorMatches(c.spec.hostSelector, labels));
  matching.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return matching[0];
}
