// The fleet sampled at a fixed interval for the report's charts: VMs running (on the hosts, in truth) and
// Ready (as Vireo reports them), each host's CPU and memory use and state, each cluster's imbalance as DRS
// measures it, migrations under way, and each replica's lag behind its VM.

import type { Host, HostCluster, VirtualMachine } from "../api/types.ts";
import { clusterOf } from "../api/membership.ts";
import type { Observation } from "../core/observation.ts";
import { replicationLagMs, rpoViolated } from "../core/replication.ts";
import { imbalanceOf, loadModel } from "../planners/balancing/load.ts";
import type { GroundTruth } from "../provider/sim/index.ts";
import type { ObjectStore } from "../sources/store.ts";
import { readyCondition } from "./states.ts";

export type HostState = "Up" | "Down" | "Isolated" | "Partitioned" | "Maintenance";

export interface HostSeries {
  name: string;
  cluster: string;
  cores: number;
  memoryMiB: number;
  /** Physical cores busy / cores, percent; null before the host exists. */
  cpu: (number | null)[];
  /** Memory allocated to VMs / memory, percent. */
  memory: (number | null)[];
  state: (HostState | null)[];
}

export interface Series {
  t: number[];
  running: number[];
  ready: number[];
  shouldRun: number[];
  migrating: number[];
  hosts: HostSeries[];
  imbalance: { cluster: string; values: (number | null)[] }[];
  rpo: { vm: string; rpoSeconds: number; lag: (number | null)[]; violated: number }[];
}

export function emptySeries(): Series {
  return { t: [], running: [], ready: [], shouldRun: [], migrating: [], hosts: [], imbalance: [], rpo: [] };
}

/** VMs Vireo keeps running whatever happens to them (the restart-always run strategies). */
export function shouldRun(vm: Readonly<VirtualMachine>): boolean {
  return vm.spec.runStrategy === "Always" || vm.spec.runStrategy === "RerunOnFailure";
}

/** What a sample is taken from: the hosts' reports, what is really true on them, and the objects. */
export interface FleetView {
  observation: Readonly<Observation>;
  truth: Readonly<GroundTruth>;
  store: ObjectStore;
}

/** Appends one sample taken at `t` (seconds from the start). */
export function sample(series: Series, t: number, view: Readonly<FleetView>): void {
  const { truth, store } = view;
  const index = series.t.length;
  series.t.push(t);
  const up = new Map(truth.hosts.map((h) => [h.name, h]));
  const vms = store.list("VirtualMachine");
  series.running.push(truth.vms.filter((vm) => vm.power === "Running" && up.get(vm.host)?.up).length);
  series.ready.push(vms.filter((vm) => readyCondition(vm.status?.conditions)?.status === "True" && (vm.status?.phase === "Running" || vm.status?.phase === "Migrating")).length);
  series.shouldRun.push(vms.filter(shouldRun).length);
  series.migrating.push(truth.migrations.length);
  const loads = sampleHosts(series, index, view);
  sampleImbalance(series, index, store.list("HostCluster"), loads);
  sampleReplicas(series, index, view.observation);
}

interface HostLoad {
  host: Host;
  cpu: number;
  memoryMiB: number;
}

/** Each host's use and state; returns, by cluster, the load of the hosts that take VMs. */
function sampleHosts(series: Series, index: number, view: Readonly<FleetView>): Map<string, HostLoad[]> {
  const clusters = view.store.list("HostCluster");
  const hosts = [...view.store.list("Host")].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const reports = new Map(view.observation.hosts.map((h) => [h.name, h]));
  const facts = new Map(view.truth.hosts.map((h) => [h.name, h]));
  const byCluster = new Map<string, HostLoad[]>();
  for (const host of hosts) {
    const cluster = clusterOf(host, clusters)?.metadata.name ?? "";
    const line = hostLine(series, host, cluster, index);
    const report = facts.get(host.metadata.name)?.up ? reports.get(host.metadata.name) : undefined;
    const state = stateOf(host, facts.get(host.metadata.name));
    line.state[index] = state;
    line.cpu[index] = report ? percent(report.used.cpu / host.spec.cpu.cores) : null;
    line.memory[index] = report ? percent(report.allocated.memoryMiB / host.spec.memoryMiB) : null;
    if (!report || state === "Maintenance") continue;
    const members = byCluster.get(cluster) ?? [];
    members.push({ host, cpu: report.used.cpu, memoryMiB: report.allocated.memoryMiB });
    byCluster.set(cluster, members);
  }
  return byCluster;
}

function sampleImbalance(series: Series, index: number, clusters: readonly HostCluster[], byCluster: ReadonlyMap<string, HostLoad[]>): void {
  for (const cluster of clusters) {
    const members = byCluster.get(cluster.metadata.name) ?? [];
    const model = loadModel(members.map((m) => ({ name: m.host.metadata.name, cores: m.host.spec.cpu.cores, memoryMiB: m.host.spec.memoryMiB })),
      members.map((m) => ({ host: m.host.metadata.name, demand: { cpu: m.cpu, memoryMiB: m.memoryMiB } })));
    imbalanceLine(series, cluster, index).values[index] = members.length > 1 ? Math.round(imbalanceOf(model) * 1000) / 1000 : null;
  }
}

function stateOf(host: Readonly<Host>, fact: GroundTruth["hosts"][number] | undefined): HostState {
  if (!fact?.up) return "Down";
  if (fact.isolated) return "Isolated";
  if (fact.partitioned) return "Partitioned";
  const phase = host.status?.phase;
  return host.spec.maintenance || phase === "Maintenance" || phase === "EnteringMaintenance" ? "Maintenance" : "Up";
}

function sampleReplicas(series: Series, index: number, observation: Readonly<Observation>): void {
  for (const replica of observation.replicas ?? []) {
    let line = series.rpo.find((r) => r.vm === replica.vm);
    if (!line) {
      line = { vm: replica.vm, rpoSeconds: Math.round(replica.settings.rpoMs / 1000), lag: Array.from({ length: index }, () => null), violated: 0 };
      series.rpo.push(line);
    }
    const lag = replicationLagMs(replica, observation.at);
    line.lag[index] = lag === undefined || replica.state === "FailedOver" ? null : Math.round(lag / 1000);
    if (replica.state === "Replicating" && rpoViolated(replica, observation.at)) line.violated++;
  }
  for (const line of series.rpo) if (line.lag.length <= index) line.lag[index] = null;
}

function hostLine(series: Series, host: Readonly<Host>, cluster: string, index: number): HostSeries {
  let line = series.hosts.find((h) => h.name === host.metadata.name);
  if (!line) {
    const empty = (): null[] => Array.from({ length: index }, () => null);
    line = { name: host.metadata.name, cluster, cores: host.spec.cpu.cores, memoryMiB: host.spec.memoryMiB, cpu: empty(), memory: empty(), state: empty() };
    series.hosts.push(line);
    series.hosts.sort((a, b) => (a.cluster + "\u0000" + a.name < b.cluster + "\u0000" + b.name ? -1 : 1));
  }
  return line;
}

function imbalanceLine(series: Series, cluster: Readonly<HostCluster>, index: number): Series["imbalance"][number] {
  let line = series.imbalance.find((l) => l.cluster === cluster.metadata.name);
  if (!line) {
    line = { cluster: cluster.metadata.name, values: Array.from({ length: index }, () => null) };
    series.imbalance.push(line);
  }
  return line;
}

function percent(fraction: number): number {
  return Math.round(fraction * 1000) / 10;
}

/** Every line as long as the sample times: a host or replica gone before the end has nulls from then on. */
export function padSeries(series: Series): void {
  const n = series.t.length;
  const pad = <T>(values: (T | null)[]): void => { while (values.length < n) values.push(null); };
  for (const h of series.hosts) { pad(h.cpu); pad(h.memory); pad(h.state); }
  for (const line of series.imbalance) pad(line.values);
  for (const line of series.rpo) pad(line.lag);
}
