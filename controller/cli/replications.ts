// `vireo get replications` (repl): the replicated VMs, one row each, as vSphere Replication lists them —
// state, target cluster, RPO, how old the replica is, the last sync point and whether the RPO is violated.
// Computed from the VMs' spec.replication and status.replication. The lag is measured now rather than
// read from status, so a controller that stopped writing status cannot hide a replica growing old.

import type { ReplicationState, VirtualMachine, VmReplicationStatus } from "../api/types.ts";
import { alignColumns } from "./table.ts";

/** What a user may type after `get` for this table. */
const REPLICATION_RESOURCES: ReadonlySet<string> = new Set(["replications", "replication", "repl"]);

export function isReplicationResource(resource: string): boolean {
  return REPLICATION_RESOURCES.has(resource.toLowerCase());
}

/** One replicated VM; also what `-o json|yaml` prints. */
export interface ReplicationRow {
  namespace: string;
  name: string;
  /** Absent until Vireo has reported on the replica. */
  state?: ReplicationState;
  targetCluster: string;
  rpoSeconds: number;
  /** Seconds since the start of the last completed sync, now; absent before the first sync and after a failover. */
  lagSeconds?: number;
  lastSyncTime?: string;
  /** As reported, or because the lag now exceeds the RPO; absent until Vireo has reported on the replica. */
  rpoViolated?: boolean;
  datastore?: string;
  lastSyncDurationSeconds?: number;
  lastSyncMiB?: number;
  nextSyncTime?: string;
  instances: number;
}

export function replicationRows(vms: readonly VirtualMachine[], now: number): ReplicationRow[] {
  return vms.flatMap((vm) => (vm.spec.replication ? [rowOf(vm, vm.spec.replication, now)] : []));
}

function rowOf(vm: VirtualMachine, spec: NonNullable<VirtualMachine["spec"]["replication"]>, now: number): ReplicationRow {
  const row: ReplicationRow = { namespace: vm.metadata.namespace ?? "default", name: vm.metadata.name, targetCluster: spec.targetCluster, rpoSeconds: spec.rpoSeconds, instances: 0 };
  const status = vm.status?.replication;
  return status ? reported(row, status, now) : row;
}

function reported(row: ReplicationRow, status: VmReplicationStatus, now: number): ReplicationRow {
  const lag = status.state === "FailedOver" ? undefined : lagAt(status.lastSyncTime, now);
  return definedOnly({
    ...row,
    state: status.state,
    targetCluster: status.targetCluster,
    lagSeconds: lag,
    lastSyncTime: status.lastSyncTime,
    rpoViolated: status.rpoViolated || (lag !== undefined && lag > row.rpoSeconds),
    datastore: status.datastore,
    lastSyncDurationSeconds: status.lastSyncDurationSeconds,
    lastSyncMiB: status.lastSyncMiB,
    nextSyncTime: status.nextSyncTime,
    instances: status.instances?.length ?? 0,
  });
}

/** The object without its undefined fields, so `-o json|yaml` prints only what is known. */
function definedOnly<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

function lagAt(lastSyncTime: string | undefined, now: number): number | undefined {
  const time = lastSyncTime === undefined ? Number.NaN : Date.parse(lastSyncTime);
  return Number.isNaN(time) ? undefined : Math.max(0, Math.round((now - time) / 1000));
}

export interface ReplicationTableOptions {
  wide?: boolean;
  allNamespaces: boolean;
}

/**
 * An RPO or a lag in its two largest units, as an operator says them ("1h", "4h", "15m", "1h30m", "42s"):
 * kubectl's age format would print an hour's RPO as "60m".
 */
export function rpoDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.trunc(totalSeconds));
  const units: [number, string][] = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  const i = units.findIndex(([size]) => s >= size);
  if (i < 0) return "0s";
  const [size, unit] = units[i]!;
  const [nextSize, nextUnit] = units[i + 1] ?? [1, ""];
  const rest = Math.trunc((s % size) / nextSize);
  return `${Math.trunc(s / size)}${unit}${rest > 0 && nextUnit ? `${rest}${nextUnit}` : ""}`;
}

const seconds = (s: number | undefined): string => (s === undefined ? "" : rpoDuration(s));
const text = (value: string | number | boolean | undefined): string => (value === undefined ? "" : String(value));

/** The table, laid out as `vireo get` lays out the CRDs' tables; "" when there are no rows. */
export function formatReplications(rows: readonly ReplicationRow[], options: ReplicationTableOptions): string {
  if (rows.length === 0) return "";
  const header = [
    ...(options.allNamespaces ? ["NAMESPACE"] : []), "NAME", "STATE", "TARGET", "RPO", "LAG", "LAST SYNC", "VIOLATED",
    ...(options.wide ? ["DATASTORE", "SYNC DURATION", "SYNC MIB", "NEXT SYNC", "INSTANCES"] : []),
  ];
  const lines = rows.map((r) => [
    ...(options.allNamespaces ? [r.namespace] : []),
    r.name, text(r.state), r.targetCluster, seconds(r.rpoSeconds), seconds(r.lagSeconds), text(r.lastSyncTime), text(r.rpoViolated),
    ...(options.wide ? [text(r.datastore), seconds(r.lastSyncDurationSeconds), text(r.lastSyncMiB === undefined ? undefined : Math.round(r.lastSyncMiB)), text(r.nextSyncTime), String(r.instances)] : []),
  ]);
  return alignColumns([header, ...lines]);
}
