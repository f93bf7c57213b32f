// VM monitoring (vSphere HA's VM monitoring): a guest whose heartbeat stopped for longer than the
// policy's timeout, that shows no activity, and that has been up for the minimum uptime is reset — at most
// maxResets times per window; after that it is left alone and marked Failed. Pure.
//
// "No disk or network I/O for 120 s" (BEHAVIOUR.md) is read as the guest using no CPU: the hosts report a
// guest's CPU use, and a hung or frozen guest uses none (docs/ha.md).

import type { VirtualMachineStatus } from "../../api/types.ts";
import type { VmObservation } from "../../core/observation.ts";
import { MONITORING_MIN_UPTIME_SECONDS, type VmMonitoring } from "./protection.ts";

export type VmMonitoringInput = VmMonitoring;

type Resets = NonNullable<VirtualMachineStatus["monitoringResets"]>;

export type MonitoringVerdict =
  | { kind: "Healthy" }
  | { kind: "Reset"; key: string; message: string; resets: Resets }
  | { kind: "GiveUp"; message: string };

export function monitorGuest(instance: Readonly<VmObservation>, previous: Readonly<Resets> | undefined, monitoring: Readonly<VmMonitoring>, now: number): MonitoringVerdict {
  if (instance.power !== "Running" || instance.poweredOnAt === undefined) return { kind: "Healthy" };
  if (now - instance.poweredOnAt < MONITORING_MIN_UPTIME_SECONDS * 1000) return { kind: "Healthy" };
  const lastBeat = instance.guestHeartbeat ?? instance.since;
  const silentMs = now - lastBeat;
  if (silentMs <= monitoring.heartbeatTimeoutMs || instance.cpuUsage > 0) return { kind: "Healthy" };

  const windowStart = previous ? Date.parse(previous.windowStart) : undefined;
  const inWindow = windowStart !== undefined && now - windowStart < monitoring.resetWindowMs;
  const count = inWindow ? previous!.count : 0;
  // The reset of this run was already ordered (the observation has not shown the reboot yet): not again.
  if (previous?.last !== undefined && Date.parse(previous.last) > instance.poweredOnAt) return { kind: "Healthy" };
  if (count >= monitoring.maxResets) {
    return { kind: "GiveUp", message: `no guest heartbeat for ${Math.round(silentMs / 1000)}s; already reset ${count} times in the window of ${monitoring.resetWindowMs / 1000}s, so VM monitoring leaves it` };
  }
  const iso = new Date(now).toISOString();
  return {
    kind: "Reset",
    key: `${instance.id}@${instance.poweredOnAt}`,
    message: `no guest heartbeat for ${Math.round(silentMs / 1000)}s and no activity: reset ${count + 1} of ${monitoring.maxResets}`,
    resets: { count: count + 1, windowStart: inWindow ? previous!.windowStart : iso, last: iso },
  };
}

/** When monitoring should look at the VM again (a reconcile wakes it then), or undefined when never. */
export function nextMonitoringCheck(instance: Readonly<VmObservation>, monitoring: Readonly<VmMonitoring>, now: number): number | undefined {
  if (instance.power !== "Running" || instance.poweredOnAt === undefined) return undefined;
  const lastBeat = instance.guestHeartbeat ?? instance.since;
  const due = Math.max(instance.poweredOnAt + MONITORING_MIN_UPTIME_SECONDS * 1000, lastBeat + monitoring.heartbeatTimeoutMs + 1);
  // A heartbeat a second ago moves the deadline; checking every few seconds at worst is cheap.
  return Math.max(due, now + MONITORING_RECHECK_MS);
}

const MONITORING_RECHECK_MS = 5_000;
