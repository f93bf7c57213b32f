// What the console shows of each object: small, flat views with short keys, so the first payload for
// 1,000 hosts and 20,000 VMs stays compact. A VM is a row (an array in VM_COLUMNS order) because there are
// many of them; the full object, its migrations and its events are fetched per VM for the detail pane.
// Nothing here is secret: views carry names, labels, phases and numbers, never annotations or credentials.

import type { Condition, Host, HostCluster, HostClusterStatus, HostStatus, VireoObject, VirtualMachine, VirtualMachineMigration, VirtualMachineStatus } from "../api/types.ts";
import { LAB_LABEL } from "../api/types.ts";

export interface ClusterView {
  n: string;
  /** HA enabled. */
  ha: boolean;
  /** Hosts ready, and in the cluster. */
  hr: number;
  ht: number;
  /** Failover capacity: host failures tolerated now, and required by admission control. */
  ft?: number;
  fr?: number;
  /** The worst-case set of hosts whose failure strands a protected VM. */
  wc?: string[];
  /** Imbalance (the standard deviation of host load) and the target the threshold tolerates. */
  im?: number;
  it?: number;
  /** VMs waiting for capacity, and unschedulable. */
  aw: number;
  un: number;
  /** VMs running, and in the cluster. */
  vr: number;
  vt: number;
  /** The Ready condition's status, and its message when not True. */
  rd?: string;
  rm?: string;
}

export type DatastoreState = "Ok" | "Degraded" | "AllPathsDown";

export interface HostView {
  n: string;
  c?: string;
  /** Phase; "Unknown" before the first report. */
  p: string;
  hv: string;
  /** spec.maintenance: the host was asked to enter maintenance. */
  m: boolean;
  /** Physical cores, schedulable vCPUs (cores × overcommit) and memory (MiB). */
  cores: number;
  cap: [number, number];
  /** vCPUs and MiB allocated to VMs; cores and MiB in use. */
  al: [number, number];
  us: [number, number];
  v: number;
  /** Storage paths up, and declared. */
  sp: [number, number];
  /** Each datastore: name, state, paths up. */
  ds: [string, DatastoreState, number][];
  /** VMs that cannot leave for maintenance. */
  eb?: number;
  /** Drift: operations in the patch. */
  dr?: number;
}

/** The columns of a VM row, in order. */
export const VM_COLUMNS = ["namespace", "name", "phase", "host", "cluster", "labels", "owner", "lab", "flags"] as const;

/** A VM row: namespace, name, phase, host, cluster, index into the label sets, owner, lab, flags. */
export type VmRow = [string, string, string, string, string, number, string, string, number];

/** Bits of a VM row's flags: what the list marks without fetching the detail. */
export const VM_FLAGS = { notReady: 1, drifted: 2, migrating: 4, failingOver: 8, rpoViolated: 16 } as const;

/** Label sets are shared by many VMs: each distinct set is sent once, and rows point at it. */
export class LabelSets {
  private readonly index = new Map<string, number>();
  readonly sets: Record<string, string>[] = [];

  /** The index of `labels` (lab and owner labels included: the filter matches on every label). */
  of(labels: Readonly<Record<string, string>> | undefined): number {
    const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify(entries);
    let at = this.index.get(key);
    if (at === undefined) {
      at = this.sets.length;
      this.sets.push(Object.fromEntries(entries));
      this.index.set(key, at);
    }
    return at;
  }
}

export function clusterView(cluster: Readonly<HostCluster>): ClusterView {
  const s: HostClusterStatus = cluster.status ?? {};
  return withDefined({ n: cluster.metadata.name, ha: cluster.spec.ha.enabled, ...clusterCounts(s) }, clusterFindings(s));
}

function clusterCounts(s: Readonly<HostClusterStatus>): Pick<ClusterView, "hr" | "ht" | "aw" | "un" | "vr" | "vt"> {
  return { hr: s.hostsReady ?? 0, ht: s.hostsTotal ?? 0, aw: s.vmsAwaitingCapacity ?? 0, un: s.vmsUnschedulable ?? 0, vr: s.vmsRunning ?? 0, vt: s.vmsTotal ?? 0 };
}

/** Failover capacity, balance and readiness, when the cluster's reconcile has found them. */
function clusterFindings(s: Readonly<HostClusterStatus>): Partial<ClusterView> {
  const ready = readyOf(s.conditions);
  const failover = s.failoverCapacity;
  return {
    ft: failover?.tolerates,
    fr: failover?.required,
    wc: failover?.worstCase?.length ? failover.worstCase.slice(0, 10) : undefined,
    im: s.balancing ? round(s.balancing.imbalance, 1000) : undefined,
    it: s.balancing ? round(s.balancing.target, 1000) : undefined,
    rd: ready?.status,
    rm: ready && ready.status !== "True" ? ready.message : undefined,
  };
}

const NOTHING = { cpu: 0, memoryMiB: 0 };

export function hostView(host: Readonly<Host>): HostView {
  const s: HostStatus = host.status ?? {};
  const { cpu, memoryMiB, storagePaths } = host.spec;
  const capacity = s.capacity ?? { cpu: cpu.cores * cpu.overcommitRatio, memoryMiB };
  const allocated = s.allocated ?? NOTHING;
  const used = s.used ?? NOTHING;
  const datastores = s.datastores ?? host.spec.datastores.map((name) => ({ name, state: "Ok" as const, pathsUp: storagePaths }));
  return withDefined({
    n: host.metadata.name,
    p: s.phase ?? "Unknown",
    hv: host.spec.hypervisor,
    m: host.spec.maintenance,
    cores: cpu.cores,
    cap: [capacity.cpu, capacity.memoryMiB],
    al: [allocated.cpu, allocated.memoryMiB],
    // Tenths of a core are as fine as a bar shows: finer would send a change at every observation.
    us: [round(used.cpu, 10), used.memoryMiB],
    v: s.vmCount ?? 0,
    sp: [s.storagePathsUp ?? storagePaths, storagePaths],
    ds: datastores.map((d): [string, DatastoreState, number] => [d.name, d.state, d.pathsUp]),
  }, {
    c: s.cluster,
    eb: s.evacuationBlocked?.length || undefined,
    dr: s.drift?.count,
  });
}

export function vmRow(vm: Readonly<VirtualMachine>, labelSets: LabelSets): VmRow {
  const s: VirtualMachineStatus = vm.status ?? {};
  const labels = vm.metadata.labels ?? {};
  return [
    vm.metadata.namespace ?? "default",
    vm.metadata.name,
    s.phase ?? "Pending",
    s.host ?? "",
    vm.spec.placement.cluster,
    labelSets.of(labels),
    vm.spec.owner ?? "",
    labels[LAB_LABEL] ?? "",
    vmFlags(s),
  ];
}

/** What each flag means, read from the VM's status. */
const FLAG_TESTS: readonly (readonly [number, (s: Readonly<VirtualMachineStatus>) => boolean])[] = [
  [VM_FLAGS.notReady, (s) => (readyOf(s.conditions)?.status ?? "True") !== "True"],
  [VM_FLAGS.drifted, (s) => s.drift !== undefined],
  [VM_FLAGS.migrating, (s) => s.phase === "Migrating"],
  [VM_FLAGS.failingOver, (s) => s.lastFailover !== undefined && !s.lastFailover.toHost],
  [VM_FLAGS.rpoViolated, (s) => s.replication?.rpoViolated === true],
];

function vmFlags(s: Readonly<VirtualMachineStatus>): number {
  return FLAG_TESTS.reduce((flags, [bit, holds]) => (holds(s) ? flags | bit : flags), 0);
}

/** A VM as the detail pane shows it: its declared facts and status, without annotations. */
export interface VmDetail {
  metadata: { name: string; namespace: string; labels: Record<string, string>; generation?: number; creationTimestamp?: string; deletionTimestamp?: string; owners: string[] };
  spec: VirtualMachine["spec"];
  status: NonNullable<VirtualMachine["status"]>;
  /** The VirtualMachineMigrations that name this VM, with their progress. */
  migrations: MigrationSummary[];
}

export interface MigrationSummary {
  name: string;
  mode: string;
  phase?: string;
  sourceHost?: string;
  targetHost?: string;
  rounds?: number;
  estimatedRounds?: number;
  transferredMiB?: number;
  remainingMiB?: number;
  downtimeMs?: number;
  attempts?: number;
  failureReason?: string;
}

export function vmDetail(vm: Readonly<VirtualMachine>, migrations: readonly VirtualMachineMigration[]): VmDetail {
  const m = vm.metadata;
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace ?? "default",
      labels: { ...m.labels },
      ...(m.generation !== undefined ? { generation: m.generation } : {}),
      ...(m.creationTimestamp ? { creationTimestamp: m.creationTimestamp } : {}),
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      owners: (m.ownerReferences ?? []).map((o) => `${o.kind}/${o.name}`),
    },
    spec: vm.spec,
    status: vm.status ?? {},
    migrations: migrations
      .filter((mig) => mig.spec.vmName === m.name && (mig.metadata.namespace ?? "default") === (m.namespace ?? "default"))
      .map(migrationSummary),
  };
}

function migrationSummary(mig: Readonly<VirtualMachineMigration>): MigrationSummary {
  const s = mig.status ?? {};
  const summary: MigrationSummary = { name: mig.metadata.name, mode: mig.spec.mode };
  const copy = <K extends keyof MigrationSummary>(key: K, value: MigrationSummary[K] | undefined) => {
    if (value !== undefined) summary[key] = value;
  };
  copy("phase", s.phase);
  copy("sourceHost", s.sourceHost);
  copy("targetHost", s.targetHost ?? mig.spec.targetHost);
  copy("rounds", s.rounds);
  copy("estimatedRounds", s.estimate?.rounds);
  copy("transferredMiB", s.transferredMiB);
  copy("remainingMiB", s.remainingMiB);
  copy("downtimeMs", s.downtimeMs);
  copy("attempts", s.attempts);
  copy("failureReason", s.failureReason);
  return summary;
}

/** The kinds the console lists; the others (policies, faults, plans, labs) appear through events. */
export function isShown(object: Readonly<VireoObject>): object is Host | HostCluster | VirtualMachine {
  return object.kind === "Host" || object.kind === "HostCluster" || object.kind === "VirtualMachine";
}

function readyOf(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === "Ready");
}

function round(x: number, per: number): number {
  return Math.round(x * per) / per;
}

/** `view` with those of `optional`'s fields that are set: absent ones stay out of the JSON. */
function withDefined<T extends object, O extends object>(view: T, optional: O): T & Partial<O> {
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) (view as Record<string, unknown>)[key] = value;
  return view as T & Partial<O>;
}
