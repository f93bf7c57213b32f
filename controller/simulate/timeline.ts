// A scenario's timeline, resolved against the fleet: each entry becomes one step the run carries out at
// its time — manifests to apply (faults become Fault objects, migrations VirtualMachineMigrations), a
// maintenance toggle, a rolling maintenance, a change of what guests do. Every host and VM an entry names
// must exist in the fleet by then, or the scenario is refused at that field.

import type { Fault, Host, HostCluster, LabelSelector, VireoObject, VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { API_VERSION, keyOf, objectKey, vmId } from "../api/types.ts";
import { isNamespaced } from "../api/schema.ts";
import { validateManifest } from "../api/schema.ts";
import { clusterOf, hostLabels } from "../api/membership.ts";
import { selectorMatches } from "../api/selectors.ts";
import type { WorkloadProfile } from "../core/observation.ts";
import type { FaultEvent, HostTargets, TimelineEntry } from "./scenario-schema.ts";
import { EVENT_ACTIONS } from "./scenario-schema.ts";
import type { ProblemSink } from "./problems.ts";
import { report } from "./problems.ts";
import { loadManifests } from "./manifests.ts";
import type { PathResolver } from "./manifests.ts";
import { describeDuration, durationOf } from "./durations.ts";
import { childPath } from "./yaml-lines.ts";

/** A rolling maintenance gives up on a host that has not emptied in this long (default). */
const DEFAULT_ROLLING_TIMEOUT_MS = 30 * 60_000;

export interface WorkloadChange {
  profile?: WorkloadProfile;
  cpuPercent?: number;
}

export type StepAction =
  | { type: "Apply"; objects: VireoObject[] }
  | { type: "Maintenance"; hosts: string[]; enabled: boolean }
  | { type: "RollingMaintenance"; hosts: string[]; holdMs: number; timeoutMs: number }
  | { type: "Workload"; vms?: string[]; selector?: LabelSelector; namespace?: string; change: WorkloadChange }
  | { type: "Delete"; keys: string[] };

export interface ScenarioStep {
  /** The entry's index in the file's timeline. */
  index: number;
  atMs: number;
  /** What the step does, for the timeline and the report. */
  summary: string;
  note?: string;
  action: StepAction;
}

/** The fleet as known at a point of the timeline: what was declared, plus what earlier steps applied. */
export class FleetIndex {
  readonly hosts = new Map<string, Host>();
  readonly vms = new Map<string, VirtualMachine>();
  readonly clusters = new Map<string, HostCluster>();
  /** Every object, by store key. */
  readonly keys = new Set<string>();
  labs = 0;

  add(objects: readonly VireoObject[]): void {
    for (const object of objects) {
      this.keys.add(keyOf(object));
      if (object.kind === "Host") this.hosts.set(object.metadata.name, object);
      else if (object.kind === "VirtualMachine") this.vms.set(vmId(object), object);
      else if (object.kind === "HostCluster") this.clusters.set(object.metadata.name, object);
      else if (object.kind === "LabTopology") this.labs++;
    }
  }

  remove(key: string): void {
    this.keys.delete(key);
    const [kind, ...rest] = key.split("/");
    if (kind === "Host") this.hosts.delete(rest.join("/"));
    else if (kind === "VirtualMachine") this.vms.delete(rest.join("/"));
    else if (kind === "HostCluster") this.clusters.delete(rest.join("/"));
  }
}

export interface TimelineContext {
  sink: ProblemSink;
  resolve: PathResolver;
  durationMs: number;
  fleet: FleetIndex;
}

/** The steps of the timeline in the order they happen (by time, then as written). */
export function resolveTimeline(entries: readonly TimelineEntry[], ctx: TimelineContext): ScenarioStep[] {
  const ordered = entries.map((entry, index) => ({ entry, index, atMs: durationOf(entry.at) }))
    .sort((a, b) => (a.atMs ?? 0) - (b.atMs ?? 0) || a.index - b.index);
  const steps: ScenarioStep[] = [];
  for (const { entry, index, atMs } of ordered) {
    const path = `timeline[${index}]`;
    if (atMs === undefined) report(ctx.sink, `${path}.at`, `must be a duration such as 90s, 30m or 1h30m, got ${JSON.stringify(entry.at)}`);
    else if (atMs > ctx.durationMs) report(ctx.sink, `${path}.at`, `is after the end of the run (duration ${describeDuration(ctx.durationMs)})`);
    const actions = EVENT_ACTIONS.filter((a) => entry[a] !== undefined);
    if (actions.length !== 1) {
      report(ctx.sink, path, `an entry does exactly one of ${EVENT_ACTIONS.join(", ")}${actions.length > 1 ? `; this one has ${actions.join(", ")}` : ""}`);
      continue;
    }
    const resolved = resolveEntry(entry, path, ctx, atMs ?? 0);
    if (resolved && atMs !== undefined) steps.push({ index, atMs, ...(entry.note ? { note: entry.note } : {}), ...resolved });
  }
  return steps;
}

function resolveEntry(entry: TimelineEntry, path: string, ctx: TimelineContext, atMs: number): Pick<ScenarioStep, "summary" | "action"> | undefined {
  if (entry.fault) return resolveFault(entry.fault, `${path}.fault`, ctx, atMs, path);
  if (entry.maintenance) {
    const hosts = selectHosts(entry.maintenance, `${path}.maintenance`, ctx);
    return hosts && { summary: `maintenance ${entry.maintenance.enabled ? "on" : "off"}: ${hosts.join(", ")}`, action: { type: "Maintenance", hosts, enabled: entry.maintenance.enabled } };
  }
  if (entry.rollingMaintenance) {
    const p = `${path}.rollingMaintenance`;
    const r = entry.rollingMaintenance;
    const hosts = r.cluster !== undefined ? clusterHosts(r.cluster, p, ctx, r) : selectHosts(r, p, ctx);
    const holdMs = positiveDuration(r.hold, `${p}.hold`, ctx);
    const timeoutMs = r.timeout === undefined ? DEFAULT_ROLLING_TIMEOUT_MS : positiveDuration(r.timeout, `${p}.timeout`, ctx);
    if (!hosts || holdMs === undefined || timeoutMs === undefined) return undefined;
    return { summary: `rolling maintenance of ${hosts.join(", ")}, ${describeDuration(holdMs)} each`, action: { type: "RollingMaintenance", hosts, holdMs, timeoutMs } };
  }
  if (entry.migrate) return resolveMigration(entry.migrate, `${path}.migrate`, ctx, path);
  if (entry.workload) return resolveWorkload(entry.workload, `${path}.workload`, ctx);
  if (entry.delete) return resolveDelete(entry.delete, `${path}.delete`, ctx);
  const objects = loadManifests(entry.apply!, `${path}.apply`, ctx.sink, ctx.resolve);
  ctx.fleet.add(objects);
  return { summary: `apply ${objects.map((o) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`).join(", ")}`, action: { type: "Apply", objects } };
}

/** The hosts an entry names: `host`, `hosts` or `hostSelector`, exactly one, each in the fleet. */
function selectHosts(targets: Readonly<HostTargets>, path: string, ctx: TimelineContext): string[] | undefined {
  const given = (["host", "hosts", "hostSelector"] as const).filter((k) => targets[k] !== undefined);
  if (given.length !== 1) {
    report(ctx.sink, given.length === 0 ? path : `${path}.${given[1]}`, given.length === 0 ? "name the hosts: host, hosts or hostSelector" : "set one of host, hosts and hostSelector");
    return undefined;
  }
  if (targets.hostSelector) {
    const hosts = [...ctx.fleet.hosts.values()].filter((h) => selectorMatches(targets.hostSelector!, hostLabels(h))).map((h) => h.metadata.name).sort();
    if (hosts.length === 0) report(ctx.sink, `${path}.hostSelector`, "matches no host in the fleet");
    return hosts.length > 0 ? hosts : undefined;
  }
  const named = targets.host !== undefined ? [{ name: targets.host, field: `${path}.host` }] : targets.hosts!.map((name, i) => ({ name, field: `${path}.hosts[${i}]` }));
  const unknown = named.filter((n) => !ctx.fleet.hosts.has(n.name));
  for (const n of unknown) report(ctx.sink, n.field, `host "${n.name}" is not in the fleet`);
  return unknown.length > 0 ? undefined : [...new Set(named.map((n) => n.name))];
}

function clusterHosts(cluster: string, path: string, ctx: TimelineContext, targets: Readonly<HostTargets>): string[] | undefined {
  if (targets.host !== undefined || targets.hosts !== undefined || targets.hostSelector !== undefined) {
    report(ctx.sink, `${path}.cluster`, "set cluster or the hosts (host, hosts, hostSelector), not both");
    return undefined;
  }
  if (!ctx.fleet.clusters.has(cluster)) {
    report(ctx.sink, `${path}.cluster`, `HostCluster "${cluster}" is not in the fleet`);
    return undefined;
  }
  const clusters = [...ctx.fleet.clusters.values()];
  const hosts = [...ctx.fleet.hosts.values()].filter((h) => clusterOf(h, clusters)?.metadata.name === cluster).map((h) => h.metadata.name).sort();
  if (hosts.length === 0) report(ctx.sink, `${path}.cluster`, `HostCluster "${cluster}" has no hosts`);
  return hosts.length > 0 ? hosts : undefined;
}

function resolveFault(fault: Readonly<FaultEvent>, path: string, ctx: TimelineContext, atMs: number, entryPath: string): Pick<ScenarioStep, "summary" | "action"> | undefined {
  const durationMs = fault.duration === undefined ? undefined : positiveDuration(fault.duration, `${path}.duration`, ctx);
  if (fault.duration !== undefined && durationMs === undefined) return undefined;
  const name = (target: string) => `${entryPath.replace(/^timeline\[(\d+)\]$/, "t$1")}-${fault.type.toLowerCase()}-${target}`.slice(0, 63).replace(/-+$/, "");
  const spec = (target: Fault["spec"]["target"]): Fault["spec"] => ({
    type: fault.type,
    target,
    startAfterSeconds: 0,
    ...(durationMs !== undefined ? { durationSeconds: Math.max(1, Math.round(durationMs / 1000)) } : {}),
    ...(fault.slowdownFactor !== undefined ? { slowdownFactor: fault.slowdownFactor } : {}),
  });
  let faults: { name: string; spec: Fault["spec"] }[];
  let on: string;
  if (fault.type === "GuestHang") {
    if (fault.host !== undefined || fault.hosts !== undefined || fault.hostSelector !== undefined) return report(ctx.sink, path, "a GuestHang names its VM (vm), not hosts");
    if (fault.vm === undefined) return report(ctx.sink, `${path}.vm`, "required for GuestHang");
    if (!ctx.fleet.vms.has(fault.vm)) return report(ctx.sink, `${path}.vm`, `VM "${fault.vm}" is not in the fleet`);
    const [namespace, vmName] = fault.vm.split("/") as [string, string];
    faults = [{ name: name(vmName), spec: spec({ vm: { namespace, name: vmName } }) }];
    on = `VM ${fault.vm}`;
  } else {
    const hosts = selectHosts(fault, path, ctx);
    if (!hosts) return undefined;
    if (fault.datastore !== undefined) {
      const blind = hosts.filter((h) => !ctx.fleet.hosts.get(h)!.spec.datastores.includes(fault.datastore!));
      if (blind.length > 0) return report(ctx.sink, `${path}.datastore`, `host ${blind.join(", ")} does not see datastore "${fault.datastore}"`);
    }
    const extra = { ...(fault.datastore !== undefined ? { datastore: fault.datastore } : {}), ...(fault.paths !== undefined ? { paths: fault.paths } : {}) };
    faults = fault.type === "NetworkPartition"
      ? [{ name: name(hosts[0]!), spec: spec({ hosts, ...(fault.includeStorage !== undefined ? { includeStorage: fault.includeStorage } : {}) }) }]
      : hosts.map((host) => ({ name: name(host), spec: spec({ host, ...extra, ...(fault.includeStorage !== undefined ? { includeStorage: fault.includeStorage } : {}) }) }));
    on = hosts.join(", ");
  }
  const objects: VireoObject[] = [];
  for (const f of faults) {
    const result = validateManifest({ apiVersion: API_VERSION, kind: "Fault", metadata: { name: f.name }, spec: f.spec });
    if (!result.ok) {
      for (const e of result.errors) report(ctx.sink, faultField(path, e.path), e.message);
      return undefined;
    }
    objects.push(result.object);
  }
  const lasts = durationMs === undefined ? `until the end (${describeDuration(ctx.durationMs - atMs)})` : `for ${describeDuration(durationMs)}`;
  return { summary: `${fault.type} on ${on} ${lasts}`, action: { type: "Apply", objects } };
}

/** The scenario field a Fault's field comes from. */
function faultField(path: string, crdPath: string): string {
  const field = crdPath.replace(/^spec\.(target\.)?/, "").replace(/^durationSeconds$/, "duration").replace(/^vm\..*$/, "vm");
  return field === "" || crdPath.startsWith("metadata") || crdPath === "spec" ? path : childPath(path, field);
}

function resolveMigration(m: Readonly<{ vm: string; to?: string; mode?: "Live" | "Cold" }>, path: string, ctx: TimelineContext, entryPath: string): Pick<ScenarioStep, "summary" | "action"> | undefined {
  if (!ctx.fleet.vms.has(m.vm)) return report(ctx.sink, `${path}.vm`, `VM "${m.vm}" is not in the fleet`);
  if (m.to !== undefined && !ctx.fleet.hosts.has(m.to)) return report(ctx.sink, `${path}.to`, `host "${m.to}" is not in the fleet`);
  const [namespace, vmName] = m.vm.split("/") as [string, string];
  const request = {
    apiVersion: API_VERSION,
    kind: "VirtualMachineMigration",
    metadata: { name: `${entryPath.replace(/^timeline\[(\d+)\]$/, "t$1")}-${vmName}`.slice(0, 253), namespace },
    spec: { vmName, mode: m.mode ?? "Live", ...(m.to !== undefined ? { targetHost: m.to } : {}) },
  };
  const result = validateManifest(request);
  if (!result.ok) {
    for (const e of result.errors) report(ctx.sink, path, `${e.path}: ${e.message}`);
    return undefined;
  }
  const migration = result.object as VirtualMachineMigration;
  return { summary: `migrate ${m.vm} ${migration.spec.mode === "Cold" ? "cold" : "live"}${m.to ? ` to ${m.to}` : ""}`, action: { type: "Apply", objects: [migration] } };
}

function resolveWorkload(w: Readonly<NonNullable<TimelineEntry["workload"]>>, path: string, ctx: TimelineContext): Pick<ScenarioStep, "summary" | "action"> | undefined {
  if (w.profile === undefined && w.cpuPercent === undefined) return report(ctx.sink, path, "say what changes: profile, cpuPercent or both");
  if ((w.vms === undefined) === (w.vmSelector === undefined)) return report(ctx.sink, path, "name the VMs: vms or vmSelector, one of them");
  const change: WorkloadChange = { ...(w.profile !== undefined ? { profile: w.profile } : {}), ...(w.cpuPercent !== undefined ? { cpuPercent: w.cpuPercent } : {}) };
  const what = [w.profile, w.cpuPercent !== undefined ? `${w.cpuPercent}% CPU` : undefined].filter(Boolean).join(", ");
  if (w.vms) {
    const unknown = w.vms.map((id, i) => ({ id, i })).filter(({ id }) => !ctx.fleet.vms.has(id));
    for (const { id, i } of unknown) report(ctx.sink, `${path}.vms[${i}]`, `VM "${id}" is not in the fleet`);
    if (unknown.length > 0) return undefined;
    return { summary: `workload of ${w.vms.join(", ")}: ${what}`, action: { type: "Workload", vms: [...w.vms], change } };
  }
  // A lab's VMs are made during the run, so a selector may match only those when the fleet has labs.
  const matches = [...ctx.fleet.vms.values()].filter((vm) => (w.namespace === undefined || vm.metadata.namespace === w.namespace) && selectorMatches(w.vmSelector!, vm.metadata.labels ?? {}));
  if (matches.length === 0 && ctx.fleet.labs === 0) return report(ctx.sink, `${path}.vmSelector`, "matches no VM in the fleet");
  return { summary: `workload of the VMs${w.namespace ? ` in ${w.namespace}` : ""} with ${selectorText(w.vmSelector!)}: ${what}`, action: { type: "Workload", selector: w.vmSelector!, ...(w.namespace !== undefined ? { namespace: w.namespace } : {}), change } };
}

function resolveDelete(d: Readonly<NonNullable<TimelineEntry["delete"]>>, path: string, ctx: TimelineContext): Pick<ScenarioStep, "summary" | "action"> | undefined {
  const namespaced = isNamespaced(d.kind);
  const keys: string[] = [];
  d.names.forEach((name, i) => {
    const parts = name.split("/");
    if (parts.length !== (namespaced ? 2 : 1)) return report(ctx.sink, `${path}.names[${i}]`, namespaced ? `a ${d.kind} is named namespace/name` : `a ${d.kind} is named without a namespace`);
    const key = namespaced ? objectKey(d.kind, parts[1]!, parts[0]) : objectKey(d.kind, name);
    if (!ctx.fleet.keys.has(key)) return report(ctx.sink, `${path}.names[${i}]`, `${d.kind} "${name}" is not in the fleet`);
    keys.push(key);
  });
  if (keys.length !== d.names.length) return undefined;
  for (const key of keys) ctx.fleet.remove(key);
  return { summary: `delete ${d.kind} ${d.names.join(", ")}`, action: { type: "Delete", keys } };
}

function positiveDuration(value: string | number, path: string, ctx: TimelineContext): number | undefined {
  const ms = durationOf(value);
  if (ms === undefined || ms <= 0) report(ctx.sink, path, `must be a positive duration such as 90s, 30m or 1h30m, got ${JSON.stringify(value)}`);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** A label selector as kubectl's -l writes it: `tier=web,dr in (a,b),!legacy`. */
export function selectorText(selector: Readonly<LabelSelector>): string {
  const labels = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const expressions = (selector.matchExpressions ?? []).map((e) => {
    switch (e.operator) {
      case "In": return `${e.key} in (${(e.values ?? []).join(",")})`;
      case "NotIn": return `${e.key} notin (${(e.values ?? []).join(",")})`;
      case "Exists": return e.key;
      case "DoesNotExist": return `!${e.key}`;
    }
  });
  const text = [...labels, ...expressions].join(",");
  return text === "" ? "any labels" : text;
}
