// An object's state as the timeline tells it: the few status fields that say where it stands (phase,
// host, Ready and why), so a state record is written when one of them changes, not at every status write.

import type { Condition, HostClusterStatus, Kind, VireoObject, VirtualMachine, VirtualMachineMigrationStatus, VirtualMachineStatus } from "../api/types.ts";
import { objectKey } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";

export interface ObjectState {
  phase?: string;
  host?: string;
  ready?: string;
  reason?: string;
  /** Why it is not Ready, in Vireo's words. */
  message?: string;
  target?: string;
  downtimeMs?: number;
  tolerates?: number;
}

export function objectState(kind: Kind, status: NonNullable<VireoObject["status"]>): ObjectState {
  const ready = readyCondition(status.conditions);
  const state: ObjectState = {};
  const phase = (status as { phase?: string }).phase;
  if (phase !== undefined) state.phase = phase;
  if (kind === "VirtualMachine") {
    const host = (status as VirtualMachineStatus).host;
    if (host !== undefined) state.host = host;
  }
  if (ready) {
    state.ready = ready.status;
    state.reason = ready.reason;
    if (ready.status !== "True" && ready.message) state.message = ready.message;
  }
  if (kind === "VirtualMachineMigration") {
    const s = status as VirtualMachineMigrationStatus;
    if (s.targetHost !== undefined) state.target = s.targetHost;
    if (s.downtimeMs !== undefined) state.downtimeMs = s.downtimeMs;
  }
  if (kind === "HostCluster") {
    const tolerates = (status as HostClusterStatus).failoverCapacity?.tolerates;
    if (tolerates !== undefined) state.tolerates = tolerates;
  }
  return state;
}

export function readyCondition(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === "Ready");
}

/** Whether Vireo reports the VM ("namespace/name") Ready. */
export function readyOf(store: ObjectStore, id: string): boolean {
  const slash = id.indexOf("/");
  const vm = store.get(objectKey("VirtualMachine", id.slice(slash + 1), id.slice(0, slash))) as VirtualMachine | undefined;
  return readyCondition(vm?.status?.conditions)?.status === "True";
}
