// A scenario's timeline, resolved against the fleet: each entry becomes one step the run carries out at
// its time — manifests to apply (faults become Fault objects, migrations VirtualMachineMigrations), a
// maintenance toggle, a rolling maintenance, a change of what guests do. Every host and VM an entry names
// must exist in the fleet by then, or the scenario is refused at that field.

import type { LabelSelector, VireoObject, VirtualMachineMigration } from "../api/types.ts";
import { API_VERSION, objectKey } from "../api/types.ts";
import { isNamespaced, validateManifest } from "../api/schema.ts";
import { selectorMatches } from "../api/selectors.ts";
import type { WorkloadProfile } from "../core/observation.ts";
import type { DeleteEvent, EventAction, MaintenanceEvent, ManifestSource, MigrateEvent, RollingMaintenanceEvent, TimelineEntry, WorkloadEvent } from "./scenario-schema.ts";
import { EVENT_ACTIONS } from "./scenario-schema.ts";
import { report } from "./problems.ts";
import { loadManifests } from "./manifests.ts";
import { resolveFault } from "./fault-entries.ts";
import { clusterHosts, entryObjectName, positiveDuration, selectHosts, selectorText } from "./targets.ts";
import type { EntryContext, Resolved, TimelineContext } from "./targets.ts";
import { describeDuration, durationOf } from "./durations.ts";

export { FleetIndex, selectorText } from "./targets.ts";
export type { TimelineContext } from "./targets.ts";

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
    const resolved = resolveEntry(actions[0]!, entry, { ...ctx, path, atMs: atMs ?? 0 });
    if (resolved && atMs !== undefined) steps.push({ index, atMs, ...(entry.note ? { note: entry.note } : {}), ...resolved });
  }
  return steps;
}

/** How each kind of entry is resolved; each reports its problems at `${ctx.path}.<its name>`. */
const RESOLVERS: { [A in EventAction]: (value: NonNullable<TimelineEntry[A]>, ctx: EntryContext) => Resolved } = {
  fault: resolveFault,
  maintenance: resolveMaintenance,
  rollingMaintenance: resolveRollingMaintenance,
  migrate: resolveMigration,
  workload: resolveWorkload,
  apply: resolveApply,
  delete: resolveDelete,
};

function resolveEntry<A extends EventAction>(action: A, entry: TimelineEntry, ctx: EntryContext): Resolved {
  return RESOLVERS[action](entry[action]!, ctx);
}

function resolveMaintenance(m: Readonly<MaintenanceEvent>, ctx: EntryContext): Resolved {
  const hosts = selectHosts(m, `${ctx.path}.maintenance`, ctx);
  return hosts && { summary: `maintenance ${m.enabled ? "on" : "off"}: ${hosts.join(", ")}`, action: { type: "Maintenance", hosts, enabled: m.enabled } };
}

function resolveRollingMaintenance(r: Readonly<RollingMaintenanceEvent>, ctx: EntryContext): Resolved {
  const p = `${ctx.path}.rollingMaintenance`;
  const hosts = r.cluster !== undefined ? clusterHosts(r.cluster, p, ctx, r) : selectHosts(r, p, ctx);
  const holdMs = positiveDuration(r.hold, `${p}.hold`, ctx);
  const timeoutMs = r.timeout === undefined ? DEFAULT_ROLLING_TIMEOUT_MS : positiveDuration(r.timeout, `${p}.timeout`, ctx);
  if (!hosts || holdMs === undefined || timeoutMs === undefined) return undefined;
  return { summary: `rolling maintenance of ${hosts.join(", ")}, ${describeDuration(holdMs)} each`, action: { type: "RollingMaintenance", hosts, holdMs, timeoutMs } };
}

function resolveApply(source: Readonly<ManifestSource>, ctx: EntryContext): Resolved {
  const objects = loadManifests(source, `${ctx.path}.apply`, ctx.sink, ctx.resolve);
  ctx.fleet.add(objects);
  return { summary: `apply ${objects.map((o) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`).join(", ")}`, action: { type: "Apply", objects } };
}

function resolveMigration(m: Readonly<MigrateEvent>, ctx: EntryContext): Resolved {
  const path = `${ctx.path}.migrate`;
  if (!ctx.fleet.vms.has(m.vm)) return report(ctx.sink, `${path}.vm`, `VM "${m.vm}" is not in the fleet`);
  if (m.to !== undefined && !ctx.fleet.hosts.has(m.to)) return report(ctx.sink, `${path}.to`, `host "${m.to}" is not in the fleet`);
  const [namespace, vmName] = m.vm.split("/") as [string, string];
  const request = {
    apiVersion: API_VERSION,
    kind: "VirtualMachineMigration",
    metadata: { name: entryObjectName(ctx, vmName), namespace },
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

function resolveWorkload(w: Readonly<WorkloadEvent>, ctx: EntryContext): Resolved {
  const path = `${ctx.path}.workload`;
  if (w.profile === undefined && w.cpuPercent === undefined) return report(ctx.sink, path, "say what changes: profile, cpuPercent or both");
  const change: WorkloadChange = { ...(w.profile !== undefined ? { profile: w.profile } : {}), ...(w.cpuPercent !== undefined ? { cpuPercent: w.cpuPercent } : {}) };
  const what = [w.profile, w.cpuPercent !== undefined ? `${w.cpuPercent}% CPU` : undefined].filter(Boolean).join(", ");
  const chosen = workloadVms(w, path, ctx);
  if (!chosen) return undefined;
  return { summary: `workload of ${chosen.summary}: ${what}`, action: { type: "Workload", ...chosen.which, change } };
}

/** The VMs a workload entry names (`vms`) or selects (`vmSelector`, in `namespace`). */
function workloadVms(w: Readonly<WorkloadEvent>, path: string, ctx: EntryContext): { which: Pick<Extract<StepAction, { type: "Workload" }>, "vms" | "selector" | "namespace">; summary: string } | undefined {
  if (w.vms !== undefined && w.vmSelector === undefined) {
    const unknown = w.vms.map((id, i) => ({ id, i })).filter(({ id }) => !ctx.fleet.vms.has(id));
    for (const { id, i } of unknown) report(ctx.sink, `${path}.vms[${i}]`, `VM "${id}" is not in the fleet`);
    return unknown.length > 0 ? undefined : { which: { vms: [...w.vms] }, summary: w.vms.join(", ") };
  }
  const selector = w.vmSelector;
  if (selector === undefined || w.vms !== undefined) return report(ctx.sink, path, "name the VMs: vms or vmSelector, one of them");
  // A lab's VMs are made during the run, so a selector may match only those when the fleet has labs.
  const matches = [...ctx.fleet.vms.values()].filter((vm) => (w.namespace === undefined || vm.metadata.namespace === w.namespace) && selectorMatches(selector, vm.metadata.labels ?? {}));
  if (matches.length === 0 && ctx.fleet.labs === 0) return report(ctx.sink, `${path}.vmSelector`, "matches no VM in the fleet");
  return {
    which: { selector, ...(w.namespace !== undefined ? { namespace: w.namespace } : {}) },
    summary: `the VMs${w.namespace ? ` in ${w.namespace}` : ""} with ${selectorText(selector)}`,
  };
}

function resolveDelete(d: Readonly<DeleteEvent>, ctx: EntryContext): Resolved {
  const path = `${ctx.path}.delete`;
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


