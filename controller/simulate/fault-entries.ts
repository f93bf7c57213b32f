// A timeline's fault entry as Fault objects: one per host (one for all the hosts of a NetworkPartition, one
// for the VM of a GuestHang), starting when created and healing after the entry's duration. Each is checked
// by the Fault CRD, and its problems are said at the scenario's own field.

import type { Fault, VireoObject } from "../api/types.ts";
import { API_VERSION } from "../api/types.ts";
import { validateManifest } from "../api/schema.ts";
import type { FaultEvent } from "./scenario-schema.ts";
import { report } from "./problems.ts";
import { entryObjectName, positiveDuration, selectHosts } from "./targets.ts";
import type { EntryContext, Resolved } from "./targets.ts";
import { describeDuration } from "./durations.ts";
import { childPath } from "./yaml-lines.ts";

interface FaultTargets {
  /** Each Fault's name suffix and target. */
  targets: { name: string; target: Fault["spec"]["target"] }[];
  /** What the faults strike, for the summary. */
  on: string;
}

export function resolveFault(fault: Readonly<FaultEvent>, ctx: EntryContext): Resolved {
  const path = `${ctx.path}.fault`;
  const durationMs = fault.duration === undefined ? undefined : positiveDuration(fault.duration, `${path}.duration`, ctx);
  if (fault.duration !== undefined && durationMs === undefined) return undefined;
  const found = fault.type === "GuestHang" ? guestTarget(fault, path, ctx) : hostTargets(fault, path, ctx);
  if (!found) return undefined;
  const objects: VireoObject[] = [];
  for (const { name, target } of found.targets) {
    const result = validateManifest({ apiVersion: API_VERSION, kind: "Fault", metadata: { name: entryObjectName(ctx, `${fault.type.toLowerCase()}-${name}`) }, spec: faultSpec(fault, target, durationMs) });
    if (!result.ok) {
      for (const e of result.errors) report(ctx.sink, faultField(path, e.path), e.message);
      return undefined;
    }
    objects.push(result.object);
  }
  const lasts = durationMs === undefined ? `until the end (${describeDuration(ctx.durationMs - ctx.atMs)})` : `for ${describeDuration(durationMs)}`;
  return { summary: `${fault.type} on ${found.on} ${lasts}`, action: { type: "Apply", objects } };
}

/** Strikes when created, heals after the entry's duration (or lasts to the end of the run). */
function faultSpec(fault: Readonly<FaultEvent>, target: Fault["spec"]["target"], durationMs: number | undefined): Fault["spec"] {
  return {
    type: fault.type,
    target,
    startAfterSeconds: 0,
    ...(durationMs !== undefined ? { durationSeconds: Math.max(1, Math.round(durationMs / 1000)) } : {}),
    ...(fault.slowdownFactor !== undefined ? { slowdownFactor: fault.slowdownFactor } : {}),
  };
}

function guestTarget(fault: Readonly<FaultEvent>, path: string, ctx: EntryContext): FaultTargets | undefined {
  if (fault.host !== undefined || fault.hosts !== undefined || fault.hostSelector !== undefined) return report(ctx.sink, path, "a GuestHang names its VM (vm), not hosts");
  if (fault.vm === undefined) return report(ctx.sink, `${path}.vm`, "required for GuestHang");
  if (!ctx.fleet.vms.has(fault.vm)) return report(ctx.sink, `${path}.vm`, `VM "${fault.vm}" is not in the fleet`);
  const [namespace, name] = fault.vm.split("/") as [string, string];
  return { targets: [{ name, target: { vm: { namespace, name } } }], on: `VM ${fault.vm}` };
}

function hostTargets(fault: Readonly<FaultEvent>, path: string, ctx: EntryContext): FaultTargets | undefined {
  const hosts = selectHosts(fault, path, ctx);
  if (!hosts) return undefined;
  const datastore = fault.datastore;
  if (datastore !== undefined) {
    const blind = hosts.filter((h) => !ctx.fleet.hosts.get(h)!.spec.datastores.includes(datastore));
    if (blind.length > 0) return report(ctx.sink, `${path}.datastore`, `host ${blind.join(", ")} does not see datastore "${datastore}"`);
  }
  const extra = {
    ...(datastore !== undefined ? { datastore } : {}),
    ...(fault.paths !== undefined ? { paths: fault.paths } : {}),
    ...(fault.includeStorage !== undefined ? { includeStorage: fault.includeStorage } : {}),
  };
  const targets = fault.type === "NetworkPartition" ? [{ name: hosts[0]!, target: { hosts, ...extra } }] : hosts.map((host) => ({ name: host, target: { host, ...extra } }));
  return { targets, on: hosts.join(", ") };
}

/** The scenario field a Fault's field comes from. */
function faultField(path: string, crdPath: string): string {
  const field = crdPath.replace(/^spec\.(target\.)?/, "").replace(/^durationSeconds$/, "duration").replace(/^vm\..*$/, "vm");
  return field === "" || crdPath.startsWith("metadata") || crdPath === "spec" ? path : childPath(path, field);
}
