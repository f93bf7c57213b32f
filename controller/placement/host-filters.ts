// The filters that depend only on the host and the request, never on what is placed: availability,
// hypervisor, CPU vendor and features, datastores, networks, required host affinity. Their verdicts
// are computed once per batch for each distinct request "shape" and shared by every request of it.

import { byCodeUnits } from "../api/selectors.ts";
import type { Hypervisor } from "../api/types.ts";
import { HOST_AFFINITY_MISMATCH, requiredHostAffinityHolds, requiredHostAffinitySignature } from "./host-affinity.ts";
import type { HostTable } from "./hosts.ts";
import type { CpuBaseline, VmRequest } from "./types.ts";

/** Which hosts pass the static filters, and why each other host does not. */
export interface StaticVerdict {
  /** By host index: the first static reason that rejects it, or undefined when it passes. */
  reasons: readonly (string | undefined)[];
  /** The hosts that pass, in name order. */
  eligible: Int32Array;
}

export type VerdictCache = Map<string, StaticVerdict>;

export function requestedHypervisor(request: Readonly<VmRequest>): Hypervisor | undefined {
  return request.hypervisor ?? request.placement.hypervisor;
}

export function staticVerdict(
  table: HostTable,
  baseline: CpuBaseline | undefined,
  request: Readonly<VmRequest>,
  cache: VerdictCache,
): StaticVerdict {
  const features = sorted(request.cpuFeatures);
  const datastores = sorted(request.datastores);
  const networks = sorted(request.networks);
  const hypervisor = requestedHypervisor(request);
  const shape = JSON.stringify([hypervisor ?? "", features, datastores, networks, requiredHostAffinitySignature(request.placement)]);
  const known = cache.get(shape);
  if (known !== undefined) return known;

  const outsideBaseline = baseline === undefined ? undefined : features.find((f) => !baseline.features.includes(f));
  const reasons = table.hosts.map((host, index): string | undefined => {
    // A VM asking for a feature the cluster hides from its VMs can run nowhere in it: every host says so.
    if (outsideBaseline !== undefined) return `CPU feature ${outsideBaseline} is not in the cluster baseline`;
    if (host.unavailable !== undefined) return host.unavailable === "" ? "unavailable" : host.unavailable;
    if (hypervisor !== undefined && host.hypervisor !== hypervisor) return `hypervisor is not ${hypervisor}`;
    if (baseline?.vendor !== undefined && host.cpu.vendor !== baseline.vendor) return `CPU vendor is not ${baseline.vendor}`;
    const hostFeatures = table.features[index];
    const missingFeature = features.find((f) => !hostFeatures?.has(f));
    if (missingFeature !== undefined) return `missing CPU feature ${missingFeature}`;
    const hostDatastores = table.datastores[index];
    const missingDatastore = datastores.find((d) => !hostDatastores?.has(d));
    if (missingDatastore !== undefined) return `datastore ${missingDatastore} not visible`;
    const hostNetworks = table.networks[index];
    const missingNetwork = networks.find((n) => !hostNetworks?.has(n));
    if (missingNetwork !== undefined) return `network ${missingNetwork} not available`;
    const labels = table.labels[index] ?? {};
    if (!requiredHostAffinityHolds(request.placement, labels)) return HOST_AFFINITY_MISMATCH;
    return undefined;
  });
  const eligible = Int32Array.from(reasons.flatMap((reason, index) => (reason === undefined ? [index] : [])));
  const verdict = { reasons, eligible };
  cache.set(shape, verdict);
  return verdict;
}

function sorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort(byCodeUnits);
}
