// VM component protection (vSphere HA's VMCP) for all paths down: a VM whose host reports no path left
// to a datastore holding one of its disks is frozen; once the APD timeout and the response delay have
// passed it is terminated on that host (which is alive and answers) and restarted where the datastore is
// still reachable. Pure: decided from the host's report and the clock passed in.

import type { HostObservation, VmObservation } from "../../core/observation.ts";

/** BEHAVIOUR.md, Restart (vSphere HA): all paths down to a VM's storage is declared after 140 s. */
export const APD_TIMEOUT_MS = 140_000;
/** BEHAVIOUR.md, Restart (vSphere HA): the VMCP response (restart elsewhere) follows 180 s after APD. */
export const VMCP_RESPONSE_DELAY_MS = 180_000;

export interface ComponentProtectionResponse {
  /** The VM's datastores with no path left from its host. */
  datastores: string[];
  /** When the first of them lost its last path. */
  allPathsDownSince: number;
  /** When the VM is to be terminated: APD timeout + response delay after that. */
  dueAt: number;
}

/** The datastores `host` reports in APD, with since when. */
export function datastoresDown(host: Readonly<HostObservation> | undefined): Map<string, number> {
  const down = new Map<string, number>();
  for (const datastore of host?.datastores ?? []) {
    if (datastore.state === "AllPathsDown" && datastore.allPathsDownSince !== undefined) down.set(datastore.name, datastore.allPathsDownSince);
  }
  return down;
}

/**
 * When a powered-on VM is due for the VMCP response, or undefined when none of its disks sits on a
 * datastore its host reports in APD (paths that came back before the response thaw it: nothing is due).
 */
export function componentProtectionResponse(instance: Readonly<VmObservation> | undefined, host: Readonly<HostObservation> | undefined): ComponentProtectionResponse | undefined {
  if (!instance || instance.power === "Off") return undefined;
  const down = datastoresDown(host);
  const datastores = [...new Set(instance.config.disks.map((disk) => disk.datastore).filter((name) => down.has(name)))].sort();
  if (datastores.length === 0) return undefined;
  const since = Math.min(...datastores.map((name) => down.get(name)!));
  return { datastores, allPathsDownSince: since, dueAt: since + APD_TIMEOUT_MS + VMCP_RESPONSE_DELAY_MS };
}

/** The datastores a host can take new VMs on: those it sees and still reaches by at least one path. */
export function reachableDatastores(declared: readonly string[], host: Readonly<HostObservation> | undefined): string[] {
  const down = datastoresDown(host);
  return down.size === 0 ? [...declared] : declared.filter((name) => !down.has(name));
}
