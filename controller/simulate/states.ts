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
  const phase = (status as { phase?: string }).phase;
  return {
    ...(phase !== undefined ? { phase } : {}),
    ...KIND_STATE[kind]?.(status),
    ...(ready ? { ready: ready.status, reason: ready.reason } : {}),
    ...(ready && ready.status !== "True" && ready.message ? { message: ready.message } : {}),
    ...KIND_DETAILS[kind]?.(status),
  };
}

/** What a kind adds before its Ready condition (where it is)… */
const KIND_STATE: Partial<Record<Kind, (status: NonNullable<VireoObject["status"]>) => ObjectState>> = {
  VirtualMachine: (status) => {
    const host = (status as VirtualMachineStatus).host;
    return host !== undefined ? { host } : {};
  },
};

/** …and after it (how it went). */
const KIND_DETAILS: Partial<Record<Kind, (status: NonNullable<VireoObject["status"]>) => ObjectState>> = {
  VirtualMachineMigration: (status) => {
    const s = status as VirtualMachineMigrationStatus;
    return { ...(s.targetHost !== undefined ? { target: s.targetHost } : {}), ...(s.downtimeMs !== undefined ? { downtimeMs: s.downtimeMs } : {}) };
  },
  HostCluster: (status) => {
    const tolerates = (status as HostClusterStatus).failoverCapacity?.tolerates;
    return tolerates !== undefined ? { tolerates } : {};
  },
};

export function readyCondition(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === "Ready");
}

/** Whether Vireo reports the VM ("namespace/name") Ready. */
export function readyOf(store: ObjectStore, id: string): boolean {
  const slash = id.indexOf("/");
  const vm = store.get(objectKey("VirtualMachine", id.slice(slash + 1), id.slice(0, slash))) as VirtualMachine | undefined;
  return readyCondition(vm?.status?.conditions)?.status === "True";
}
