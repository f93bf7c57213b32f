// What HA remembers between reconciles, in memory: restart attempts (for vSphere's retry schedule), the
// VMs waiting to restart and why (for their status), and failovers under way (for the recovery time).
// A restarted controller starts afresh: a failover it finds half done is re-planned from observations,
// which is safe because a VM already started elsewhere is no longer a candidate.

import type { RestartAttempts } from "../planners/ha/failover.ts";

export interface HaWaiting {
  reason: string;
  message: string;
  /** HA gave up: the VM is Failed. */
  failed?: boolean;
}

export interface FailoverRecord {
  fromHost: string;
  toHost?: string;
  reason: string;
  failedAt: number;
  attempts: number;
  lastAttempt?: number;
}

export interface HaState {
  attempts: Map<string, RestartAttempts>;
  waiting: Map<string, HaWaiting>;
  failovers: Map<string, FailoverRecord>;
}

export function emptyHaState(): HaState {
  return { attempts: new Map(), waiting: new Map(), failovers: new Map() };
}
