// What a timeline entry may name, checked against the fleet as it stands by the entry's time: hosts (by
// name, list or label selector, or a whole cluster's), and durations. Shared by the entry resolvers.

import type { Host, HostCluster, LabelSelector, VireoObject, VirtualMachine } from "../api/types.ts";
import { keyOf, vmId } from "../api/types.ts";
import { clusterOf, hostLabels } from "../api/membership.ts";
import { selectorMatches } from "../api/selectors.ts";
import type { HostTargets } from "./scenario-schema.ts";
import type { ProblemSink } from "./problems.ts";
import { report } from "./problems.ts";
import type { PathResolver } from "./manifests.ts";
import type { ScenarioStep } from "./timeline.ts";
import { durationOf } from "./durations.ts";

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

/** What resolving one entry needs: the timeline's context, the entry's field path and time. */
export interface EntryContext extends TimelineContext {
  /** `timeline[2]`. */
  path: string;
  atMs: number;
}

export type Resolved = Pick<ScenarioStep, "summary" | "action"> | undefined;

/** The name of an object an entry makes: `t2-<what>`, within a name's 63 characters. */
export function entryObjectName(ctx: EntryContext, what: string): string {
  return `${ctx.path.replace(/^timeline\[(\d+)\]$/, "t$1")}-${what}`.slice(0, 63).replace(/-+$/, "");
}

/** The hosts an entry names: `host`, `hosts` or `hostSelector`, exactly one, each in the fleet. */
export function selectHosts(targets: Readonly<HostTargets>, path: string, ctx: TimelineContext): string[] | undefined {
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

export function clusterHosts(cluster: string, path: string, ctx: TimelineContext, targets: Readonly<HostTargets>): string[] | undefined {
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

export function positiveDuration(value: string | number, path: string, ctx: TimelineContext): number | undefined {
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
