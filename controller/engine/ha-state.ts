// What the clusters remember between rounds, in memory: restart attempts (for vSphere's retry schedule), the
// failovers under way (for the VMs' status and the recovery time), balancing's hold-downs and the live moves begun. Written only by the cluster reconcile,
// which records here what its plan's restarts came to. A restarted controller starts afresh: a failover it
// finds half done is re-planned from observations, which is safe because a VM already started elsewhere is
// no longer a candidate.

import type { RestartAttempts } from "../planners/ha/failover.ts";
import type { BalancingMemory, FailoverRecord, MoveRecord } from "../planners/cluster/types.ts";

export type { FailoverRecord };

export interface HaState {
  attempts: Map<string, RestartAttempts>;
  failovers: Map<string, FailoverRecord>;
  /** Balancing's memory, by cluster name: the last pass, the VMs held down. */
  balancing: Map<string, BalancingMemory>;
  /** Live moves the clusters began on their own account (evacuation, balancing), by VM id. */
  moves: Map<string, MoveRecord>;
}

export function emptyHaState(): HaState {
  return { attempts: new Map(), failovers: new Map(), balancing: new Map(), moves: new Map() };
}
