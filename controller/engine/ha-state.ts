// What HA remembers between rounds, in memory: restart attempts (for vSphere's retry schedule) and the
// failovers under way (for the VMs' status and the recovery time). Written only by the cluster reconcile,
// which records here what its plan's restarts came to. A restarted controller starts afresh: a failover it
// finds half done is re-planned from observations, which is safe because a VM already started elsewhere is
// no longer a candidate.

import type { RestartAttempts } from "../planners/ha/failover.ts";
import type { FailoverRecord } from "../planners/cluster/types.ts";

export type { FailoverRecord };

export interface HaState {
  attempts: Map<string, RestartAttempts>;
  failovers: Map<string, FailoverRecord>;
}

export function emptyHaState(): HaState {
  return { attempts: new Map(), failovers: new Map() };
}
