// Which VMs of a cluster need restarting elsewhere after a failure, and when it is safe. Pure: decided
// from the hosts' reports (heartbeats, the VMs they last reported) and the clock passed in — never from
// the simulator's internals or the Fault objects.

import type { HostPhase, VirtualMachine } from "../../api/types.ts";
import type { HostObservation, VmObservation } from "../../core/observation.ts";
import { desiredPower } from "../run-strategy.ts";

/** BEHAVIOUR.md, Locks and fencing: a lease expires 80 s after its last renewal, when the host does not say otherwise. */
export const DEFAULT_LEASE_EXPIRY_MS = 80_000;

/** SiteFailure: every host of the VM's cluster failed; it recovers from its replica in another cluster. */
export type FailoverReason = "HostFailure" | "HostIsolation" | "StorageFailure" | "VmFailure" | "SiteFailure";

export interface FailoverNeed {
  fromHost: string;
  reason: FailoverReason;
  /** When the failure began: the host's last network heartbeat, or the VM's exit. */
  failedAt: number;
  /** The earliest time another host may take the VM's disk lease: the old copy is fenced by then. */
  safeAt: number;
}

export interface HostHealth {
  phase: HostPhase;
  observed?: Readonly<HostObservation>;
}

/**
 * Why and since when a VM that should run needs to start again after a failure, or undefined when it does
 * not. A VM still shown on on a Failed host needs it once that host's lease on its disks can have expired:
 * last datastore heartbeat (the host's last lease renewal at the latest) + the lease time. A VM shown off
 * after a failure (host crash seen after the host came back, isolation response, storage fence, crash)
 * released its lease or lost it with its host's reboot: it is safe at once. A VM on an isolated or
 * partitioned host that still runs it is never a candidate: isolation is not failure.
 */
export function failoverNeed(vm: Readonly<VirtualMachine>, instance: Readonly<VmObservation> | undefined, host: HostHealth | undefined): FailoverNeed | undefined {
  if (!instance || desiredPower(vm, instance) !== "On") return undefined;
  if (instance.power !== "Off") {
    if (host?.phase !== "Failed" || !host.observed) return undefined;
    const lease = host.observed.leaseExpiryMs ?? DEFAULT_LEASE_EXPIRY_MS;
    return { fromHost: instance.host, reason: "HostFailure", failedAt: host.observed.lastNetworkHeartbeat, safeAt: host.observed.lastDatastoreHeartbeat + lease };
  }
  const exit = instance.lastExit;
  // A guest that shut itself down, or a VM someone powered off on its host, did not fail: the lifecycle
  // (runStrategy) decides whether it runs again, and drift reports the manual power-off.
  if (!exit || exit.reason === "GuestShutdown" || exit.reason === "ManualPowerOff") return undefined;
  const startedAt = vm.status?.startedAt ? Date.parse(vm.status.startedAt) : undefined;
  if (startedAt !== undefined && exit.at < startedAt) return undefined;
  return { fromHost: instance.host, reason: reasonOfExit(exit.reason), failedAt: exit.at, safeAt: exit.at };
}

function reasonOfExit(reason: NonNullable<VmObservation["lastExit"]>["reason"]): FailoverReason {
  switch (reason) {
    case "HostFailure": return "HostFailure";
    case "IsolationResponse": return "HostIsolation";
    case "StorageFailure":
    case "PoweredOff": return "StorageFailure";
    default: return "VmFailure";
  }
}

/** BEHAVIOUR.md, Restart: 5 attempts, counting the first, at T0, +2, +6, +14 and +30 min. */
export const RESTART_SCHEDULE_MS: readonly number[] = [0, 2, 6, 14, 30].map((minutes) => minutes * 60_000);

export interface RestartAttempts {
  count: number;
  firstAt: number;
  lastError?: string;
}

/** When the next attempt may be made, or "exhausted" after the fifth failed one. */
export function nextAttemptAt(attempts: Readonly<RestartAttempts> | undefined): number | "exhausted" {
  if (!attempts) return Number.NEGATIVE_INFINITY;
  const offset = RESTART_SCHEDULE_MS[attempts.count];
  return offset === undefined ? "exhausted" : attempts.firstAt + offset;
}
