// What a run comes to: each VM's recovery time and each priority's, the VMs that never came back and why
// (their Ready condition), migrations and their downtime, whether each replica kept its RPO, the peak host
// use and imbalance, and split-brain attempts (which must stay 0).

import type { HostCluster, RestartPriority, VirtualMachine } from "../api/types.ts";
import { objectKey, vmId } from "../api/types.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { MigrationRecord, Outage, TimelineRecord } from "./recorder.ts";
import { round3 } from "./recorder.ts";
import type { Series } from "./samples.ts";
import { shouldRun } from "./samples.ts";
import { readyCondition } from "./states.ts";

export type PriorityName = RestartPriority | "Unprotected";
export const PRIORITY_ORDER: readonly PriorityName[] = ["Highest", "High", "Medium", "Low", "Lowest", "Disabled", "Unprotected"];

export interface Recovery {
  vm: string;
  priority: PriorityName;
  cause: string;
  fromHost: string;
  toHost: string;
  downAt: number;
  recoveredAt: number;
  seconds: number;
}

export interface VmLeftDown {
  vm: string;
  priority: PriorityName;
  /** Why it stopped, for one that ran and stopped; absent for one that never ran. */
  cause?: string;
  downAt?: number;
  phase: string;
  ready: { status: string; reason: string; message: string };
}

export interface RunSummary {
  vms: { declared: number; shouldRun: number; runningAtEnd: number; readyAtEnd: number };
  recoveries: Recovery[];
  byPriority: { priority: PriorityName; count: number; medianSeconds: number; maxSeconds: number }[];
  notRecovered: VmLeftDown[];
  /** VMs that should run and do not at the end, with no outage to explain it (never placed, say). */
  notRunning: VmLeftDown[];
  migrations: MigrationRecord[];
  migrationTotals: { succeeded: number; failed: number; cancelled: number; unfinished: number; maxDowntimeMs: number; meanDowntimeMs: number };
  rpo: { vm: string; rpoSeconds: number; maxLagSeconds: number; met: boolean }[];
  peakUtilization: { cpu?: Peak; memory?: Peak };
  imbalance: { cluster: string; peak: number; peakAt: number; end: number | null }[];
  arrivals: Arrival[];
  splitBrainAttempts: number;
}

/** A lab or VM that arrived during the run: when, when it was first Ready, and what held it up. */
export interface Arrival {
  object: string;
  arrivedAt: number;
  readyAt?: number;
  seconds?: number;
  /** The last reason it gave for not being Ready: what it waited for (before it was Ready, or still). */
  waitedFor?: string;
}

export interface Peak {
  host: string;
  percent: number;
  t: number;
}

export interface SummaryInputs {
  store: ObjectStore;
  outages: readonly Outage[];
  migrations: readonly MigrationRecord[];
  series: Readonly<Series>;
  records: readonly TimelineRecord[];
  /** The store keys of the objects there from the start: the rest arrived during the run. */
  initial: ReadonlySet<string>;
  splitBrainAttempts: number;
}

export function summarize(inputs: Readonly<SummaryInputs>): RunSummary {
  const { store, series } = inputs;
  const vms = store.list("VirtualMachine");
  const priority = priorities(store);
  const recoveries: Recovery[] = inputs.outages.filter((o) => o.recoveredAt !== undefined).sort(byTimeThenVm).map((o) => ({
    vm: o.vm,
    priority: priority(o.vm),
    cause: o.cause,
    fromHost: o.host,
    toHost: o.toHost ?? "",
    downAt: o.downAt,
    recoveredAt: o.recoveredAt!,
    seconds: round3(o.recoveredAt! - o.downAt),
  }));
  const open = inputs.outages.filter((o) => o.recoveredAt === undefined).sort(byTimeThenVm);
  const openVms = new Set(open.map((o) => o.vm));
  const last = series.t.length - 1;
  return {
    vms: {
      declared: vms.length,
      shouldRun: vms.filter(shouldRun).length,
      runningAtEnd: series.running[last] ?? 0,
      readyAtEnd: series.ready[last] ?? 0,
    },
    recoveries,
    byPriority: byPriority(recoveries),
    notRecovered: open.map((o) => leftDown(store, o.vm, priority(o.vm), o)),
    notRunning: vms.filter((vm) => shouldRun(vm) && !openVms.has(vmId(vm)) && !runningNow(vm))
      .map((vm) => leftDown(store, vmId(vm), priority(vmId(vm)))),
    migrations: [...inputs.migrations].sort((a, b) => a.startedAt - b.startedAt || (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0)),
    migrationTotals: migrationTotals(inputs.migrations),
    rpo: series.rpo.map((r) => ({ vm: r.vm, rpoSeconds: r.rpoSeconds, maxLagSeconds: Math.max(0, ...r.lag.map((v) => v ?? 0)), met: r.violated === 0 })),
    peakUtilization: peaks(series),
    imbalance: series.imbalance.map((line) => imbalanceFigures(line.cluster, line.values, series.t)),
    arrivals: arrivals(inputs.records, inputs.initial, series.t.at(-1) ?? 0),
    splitBrainAttempts: inputs.splitBrainAttempts,
  };
}

function byTimeThenVm(a: Readonly<Outage>, b: Readonly<Outage>): number {
  return a.downAt - b.downAt || (a.recoveredAt ?? Infinity) - (b.recoveredAt ?? Infinity) || (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0);
}

function runningNow(vm: Readonly<VirtualMachine>): boolean {
  return vm.status?.phase === "Running" || vm.status?.phase === "Migrating";
}

/** Each VM's restart priority as HA sees it (the winning HAPolicy's), or Unprotected. */
function priorities(store: ObjectStore): (id: string) => PriorityName {
  const policies = store.list("HAPolicy");
  return (id) => {
    const slash = id.indexOf("/");
    const vm = store.get(objectKey("VirtualMachine", id.slice(slash + 1), id.slice(0, slash))) as VirtualMachine | undefined;
    if (!vm) return "Unprotected";
    const cluster = store.get(objectKey("HostCluster", vm.spec.placement.cluster)) as HostCluster | undefined;
    const protection = protectionOf(vm, policies, cluster);
    return protection.protected ? protection.priority : "Unprotected";
  };
}

function leftDown(store: ObjectStore, id: string, priority: PriorityName, outage?: Readonly<Outage>): VmLeftDown {
  const slash = id.indexOf("/");
  const vm = store.get(objectKey("VirtualMachine", id.slice(slash + 1), id.slice(0, slash))) as VirtualMachine | undefined;
  return {
    vm: id,
    priority,
    ...(outage ? { cause: outage.cause, downAt: outage.downAt } : {}),
    phase: vm ? vm.status?.phase ?? "Unknown" : "Deleted",
    ready: readyFacts(vm),
  };
}

/** The VM's Ready condition as the summary gives it; a VM deleted, or never written, says so. */
function readyFacts(vm: Readonly<VirtualMachine> | undefined): VmLeftDown["ready"] {
  const ready = readyCondition(vm?.status?.conditions);
  if (ready) return { status: ready.status, reason: ready.reason, message: ready.message };
  return { status: "Unknown", reason: vm ? "NoStatus" : "Deleted", message: "" };
}

function byPriority(recoveries: readonly Recovery[]): RunSummary["byPriority"] {
  return PRIORITY_ORDER.map((priority) => {
    const seconds = recoveries.filter((r) => r.priority === priority).map((r) => r.seconds).sort((a, b) => a - b);
    if (seconds.length === 0) return undefined;
    const middle = Math.floor(seconds.length / 2);
    const median = seconds.length % 2 === 1 ? seconds[middle]! : (seconds[middle - 1]! + seconds[middle]!) / 2;
    return { priority, count: seconds.length, medianSeconds: round3(median), maxSeconds: seconds.at(-1)! };
  }).filter((x) => x !== undefined);
}

function migrationTotals(migrations: readonly MigrationRecord[]): RunSummary["migrationTotals"] {
  const downtimes = migrations.filter((m) => m.phase === "Succeeded" && m.downtimeMs !== undefined).map((m) => m.downtimeMs!);
  return {
    succeeded: migrations.filter((m) => m.phase === "Succeeded").length,
    failed: migrations.filter((m) => m.phase === "Failed").length,
    cancelled: migrations.filter((m) => m.phase === "Cancelled").length,
    unfinished: migrations.filter((m) => m.endedAt === undefined).length,
    maxDowntimeMs: downtimes.length > 0 ? Math.max(...downtimes) : 0,
    meanDowntimeMs: downtimes.length > 0 ? Math.round(downtimes.reduce((a, b) => a + b, 0) / downtimes.length) : 0,
  };
}

function peaks(series: Readonly<Series>): RunSummary["peakUtilization"] {
  const peakOf = (pick: (h: Series["hosts"][number]) => (number | null)[]): Peak | undefined => {
    let best: Peak | undefined;
    for (const host of series.hosts) {
      pick(host).forEach((value, i) => {
        if (value !== null && (best === undefined || value > best.percent)) best = { host: host.name, percent: value, t: series.t[i]! };
      });
    }
    return best;
  };
  const cpu = peakOf((h) => h.cpu);
  const memory = peakOf((h) => h.memory);
  return { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) };
}

function imbalanceFigures(cluster: string, values: readonly (number | null)[], t: readonly number[]): RunSummary["imbalance"][number] {
  let peak = 0;
  let peakAt = 0;
  values.forEach((v, i) => {
    if (v !== null && v > peak) {
      peak = v;
      peakAt = t[i]!;
    }
  });
  return { cluster, peak, peakAt, end: values.at(-1) ?? null };
}

/** Labs and VMs that were not there at the start, in the order they arrived, with what held each up longest. */
function arrivals(records: readonly TimelineRecord[], initial: ReadonlySet<string>, end: number): Arrival[] {
  const found = new Map<string, { arrival: Arrival; current?: { message: string; since: number }; waited: Map<string, number> }>();
  const settle = (f: { current?: { message: string; since: number }; waited: Map<string, number> }, t: number): void => {
    if (f.current) f.waited.set(f.current.message, (f.waited.get(f.current.message) ?? 0) + t - f.current.since);
    delete f.current;
  };
  for (const r of records) {
    if (r.kind !== "state" || initial.has(r.object) || !(r.object.startsWith("LabTopology/") || r.object.startsWith("VirtualMachine/"))) continue;
    let f = found.get(r.object);
    if (!f) {
      f = { arrival: { object: r.object, arrivedAt: r.t }, waited: new Map() };
      found.set(r.object, f);
    }
    if (f.arrival.readyAt !== undefined) continue;
    settle(f, r.t);
    if (r.ready === "True" && (r.phase === undefined || r.phase === "Running")) {
      f.arrival.readyAt = r.t;
      f.arrival.seconds = round3(r.t - f.arrival.arrivedAt);
    } else if (r.message) f.current = { message: r.message, since: r.t };
  }
  return [...found.values()].map((f) => {
    if (f.arrival.readyAt === undefined) settle(f, end);
    const longest = [...f.waited].sort((a, b) => b[1] - a[1])[0];
    return longest ? { ...f.arrival, waitedFor: longest[0] } : f.arrival;
  });
}
