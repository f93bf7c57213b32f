// `vireo report usage`: who uses what (VMs, vCPUs, memory by owner and by lab), which labs are about to expire
// or have, which VMs nobody owns, which sit idle — the sprawl report — as tables or data; with
// `--reclaim --dry-run`, exactly what the leases would stop or delete now. Reads objects as `vireo get` does
// (the state directory of `vireo run`, or the API server) and changes nothing; Vireo reclaims by itself.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dump } from "js-yaml";
import type { LabTopology, VireoObject, VirtualMachine } from "../api/types.ts";
import { durationMs } from "../planners/labs/lease.ts";
import { parseWorld } from "../provider/sim/state-file.ts";
import { readSnapshot } from "../state/state-dir.ts";
import { parseArgs, usage, UsageError, type FlagSpec } from "./args.ts";
import { listFromApi, notedTime, type Output } from "./get.ts";
import { rpoDuration } from "./replications.ts";
import { alignColumns } from "./table.ts";
import { reclaimNow, usageReport, type ObservedUsage, type ReclaimItem, type ReportInput, type UsageReport } from "./usage-report.ts";

const REPORT_FLAGS: FlagSpec = {
  "state-dir": { type: "string", default: ".vireo", help: "the state directory of `vireo run` (objects, and the simulator's world for idle VMs)" },
  kubeconfig: { type: "string", help: "read the objects from the API server of this kubeconfig instead" },
  namespace: { type: "string", short: "n", help: "only this namespace (default: all namespaces)" },
  output: { type: "string", short: "o", help: "json or yaml (default: tables)" },
  "expiring-within": { type: "string", default: "24h", help: "list the labs whose next lease expiry is this close" },
  "idle-cpu-percent": { type: "string", default: "5", help: "a VM is idle while its CPU use stays at or below this share of its vCPUs…" },
  "idle-for": { type: "string", default: "24h", help: "…for this long, powered on all the while" },
  reclaim: { type: "boolean", help: "with --dry-run: what the leases would stop or delete now" },
  "dry-run": { type: "boolean", help: "with --reclaim: list, change nothing" },
  help: { type: "boolean", short: "h", help: "this help" },
};

export const REPORT_HELP = `vireo report usage — VMs, vCPUs and memory by owner and by lab; labs near or past their lease expiry;
VMs with no owner; idle VMs. With --reclaim --dry-run, exactly what the leases would stop or delete now.

Usage:
  vireo report usage [--state-dir DIR | --kubeconfig PATH] [-n NAMESPACE] [-o json|yaml]
                     [--expiring-within 24h] [--idle-cpu-percent 5] [--idle-for 24h] [--reclaim --dry-run]

A VM's owner is its spec.owner (a lab's VMs carry their lab's); its lab, its vireo.dev/lab label. vCPUs and
memory are declared, whether the VMs run or not; RUNNING counts the VMs powered on.

Idle: powered on for the whole of --idle-for, and CPU use never above --idle-cpu-percent of the VM's vCPUs
in that time. Where the state directory holds the simulator's world (world.json, kept by \`vireo run\` in
either mode), the use is the simulator's own model of each guest, sampled every 5 minutes over the window.
Without it (another process runs the hosts), a VM is judged by its status and its declared workload: Running
since status.startedAt for the whole window, and the most its profile asks — Idle 1 %, Steady its cpuPercent,
Diurnal 1.8 × and Bursty 3 × its cpuPercent (at most 100 %).

Reclaim: labs whose runtime lease ran out are stopped; labs whose storage lease or maximum lifetime ran out
are deleted with their VMs; plain VMs whose spec.lease ttl ran out are stopped (onExpiry Stop) or stopped and
removed from their host (onExpiry Delete). Objects labelled vireo.dev/lease-exempt=true are never reclaimed.
Vireo does this by itself as leases expire: --reclaim only lists it, with --dry-run.

Flags:
${usage(REPORT_FLAGS)}`;

export async function report(argv: readonly string[], io: Output, wallClock: number): Promise<number> {
  const { flags, positionals } = parseArgs(argv, REPORT_FLAGS);
  if (flags["help"]) {
    io.out(REPORT_HELP);
    return 0;
  }
  const [what] = positionals;
  if (what !== "usage") throw new UsageError(what === undefined ? "vireo report needs a report: usage" : `unknown report "${what}" (try usage)`);
  if (flags["reclaim"] && !flags["dry-run"]) {
    io.err("error: Vireo reclaims by itself as leases expire (a lab's runtime lease stops it, its storage lease deletes it, a VM's spec.lease stops or removes it); add --dry-run to list what that stops or deletes now");
    return 1;
  }
  const output = outputFlag(flags);
  const rules = usageRules(flags);
  const listing = await read(flags, io, wallClock);
  if (typeof listing === "number") return listing;
  io.out(flags["reclaim"] ? reclaimReport(listing, output) : usageOf(listing, rules, output));
  return 0;
}

function reclaimReport(listing: Readonly<Listing>, output: string | undefined): string {
  const items = reclaimNow(listing.vms, listing.labs, listing.now);
  return output ? data({ time: new Date(listing.now).toISOString(), dryRun: true, items }, output) : formatReclaim(items);
}

/** The report's window and idle rule, checked before anything is read. */
function usageRules(flags: Readonly<Record<string, unknown>>): Pick<ReportInput, "expiringWithinMs" | "idle"> {
  return {
    expiringWithinMs: durationFlag(flags, "expiring-within"),
    idle: { cpuPercent: percentFlag(flags, "idle-cpu-percent"), forMs: durationFlag(flags, "idle-for") },
  };
}

function usageOf(listing: Readonly<Listing>, rules: Pick<ReportInput, "expiringWithinMs" | "idle">, output: string | undefined): string {
  const result = usageReport({ vms: listing.vms, labs: listing.labs, now: listing.now, ...rules, ...(listing.observed ? { observed: listing.observed } : {}) });
  return output ? data(result, output) : formatUsage(result);
}

function outputFlag(flags: Readonly<Record<string, unknown>>): "json" | "yaml" | undefined {
  const output = flags["output"] as string | undefined;
  if (output === undefined || output === "json" || output === "yaml") return output;
  throw new UsageError(`unable to match a printer suitable for the output format "${output}", allowed formats are: json,yaml`);
}

function durationFlag(flags: Readonly<Record<string, unknown>>, name: string): number {
  const text = flags[name] as string;
  const ms = durationMs(text);
  if (ms === undefined) throw new UsageError(`--${name} must be a duration such as 24h, 90m or 1h30m, got "${text}"`);
  return ms;
}

function percentFlag(flags: Readonly<Record<string, unknown>>, name: string): number {
  const text = flags[name] as string;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0 || value > 100) throw new UsageError(`--${name} must be a percentage from 0 to 100, got "${text}"`);
  return value;
}

interface Listing {
  vms: VirtualMachine[];
  labs: LabTopology[];
  now: number;
  observed?: ObservedUsage;
}

/**
 * The VMs and labs (of one namespace with -n), from the API server or the state directory, and the
 * simulator's world if the state directory holds it.
 */
async function read(flags: Readonly<Record<string, unknown>>, io: Output, wallClock: number): Promise<Listing | number> {
  const stateDir = flags["state-dir"] as string;
  const kubeconfig = flags["kubeconfig"] as string | undefined;
  let objects: VireoObject[];
  let now = wallClock;
  if (kubeconfig !== undefined) {
    objects = [...await listFromApi(kubeconfig, "VirtualMachine"), ...await listFromApi(kubeconfig, "LabTopology")];
  } else {
    const snapshot = readSnapshot(join(stateDir, "objects.json"));
    if (!snapshot) {
      io.err(`no state in ${stateDir}: is \`vireo run\` running there?`);
      return 1;
    }
    objects = snapshot.objects.map((e) => e.object);
    // A sped-up `vireo run` stamps objects on its own clock, ahead of the wall clock: leases are judged on it.
    now = Math.max(wallClock, notedTime(stateDir));
  }
  const namespace = flags["namespace"] as string | undefined;
  const selected = objects.filter((o) => namespace === undefined || (o.metadata.namespace ?? "default") === namespace);
  const observed = observedUsage(stateDir);
  return {
    vms: selected.filter((o): o is VirtualMachine => o.kind === "VirtualMachine"),
    labs: selected.filter((o): o is LabTopology => o.kind === "LabTopology"),
    now,
    ...(observed ? { observed } : {}),
  };
}

function observedUsage(stateDir: string): ObservedUsage | undefined {
  const path = join(stateDir, "world.json");
  if (!existsSync(path)) return undefined;
  const { world } = parseWorld(path, readFileSync(path, "utf8"));
  return { seed: world.seed, vms: world.vms };
}

function data(body: unknown, output: string): string {
  return output === "json" ? JSON.stringify(body, null, 4) : dump(body, { noRefs: true, lineWidth: -1 }).trimEnd();
}

// ---------------------------------------------------------------- tables

/** Memory as kubectl prints a quantity: whole GiB as Gi, anything else in Mi, nothing as 0. */
export function memory(mib: number): string {
  if (mib === 0) return "0";
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

const NONE = "<none>";

function section(title: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  return rows.length === 0 ? `${title}: none\n` : `${title}:\n${alignColumns([header, ...rows])}`;
}

/** When an expiry is, from now: "in 3h", "overdue 5m". */
function until(seconds: number | undefined): string {
  if (seconds === undefined) return "expired";
  return seconds >= 0 ? `in ${rpoDuration(seconds)}` : `overdue ${rpoDuration(-seconds)}`;
}

export function formatUsage(r: Readonly<UsageReport>): string {
  const usageColumns = ["VMS", "RUNNING", "VCPUS", "MEMORY"];
  const usageCells = (u: { vms: number; running: number; vcpus: number; memoryMiB: number }) => [String(u.vms), String(u.running), String(u.vcpus), memory(u.memoryMiB)];
  const idleBasis = r.idle.basis === "Observed" ? "the simulator's usage" : "status and declared workload";
  return [
    section("VMs by owner", ["OWNER", ...usageColumns], r.byOwner.map((o) => [o.owner ?? NONE, ...usageCells(o)])),
    section("VMs by lab", ["NAMESPACE", "LAB", "OWNER", "PHASE", ...usageColumns], r.byLab.map((l) => [l.namespace, l.lab, l.owner ?? NONE, l.phase ?? "", ...usageCells(l)])),
    section(`Labs expiring within ${rpoDuration(r.expiringWithinSeconds)}, or expired`, ["NAMESPACE", "LAB", "OWNER", "PHASE", "ACTION", "EXPIRY", "WHEN"],
      r.expiringLabs.map((l) => [l.namespace, l.lab, l.owner, l.phase ?? "", l.action ?? "", l.time ?? "", until(l.inSeconds)])),
    section("VMs without an owner", ["NAMESPACE", "NAME", "PHASE", "HOST", "VCPUS", "MEMORY"],
      r.unownedVms.map((v) => [v.namespace, v.name, v.phase ?? "", v.host ?? "", String(v.vcpus), memory(v.memoryMiB)])),
    section(`Idle VMs (CPU at most ${r.idle.cpuPercent}% for ${rpoDuration(r.idle.forSeconds)}, from ${idleBasis})`, ["NAMESPACE", "NAME", "OWNER", "LAB", "HOST", "PEAK CPU", "RUNNING FOR"],
      r.idleVms.map((v) => [v.namespace, v.name, v.owner ?? NONE, v.lab ?? "", v.host ?? "", `${v.peakCpuPercent}%`, rpoDuration(v.runningSeconds)])),
  ].join("\n").trimEnd();
}

export function formatReclaim(items: readonly ReclaimItem[]): string {
  if (items.length === 0) return "No lease has run out: expiry would stop or delete nothing now (dry run)";
  // The VMs by count: -o json names them.
  const rows = items.map((i) => [i.action, i.kind, i.namespace, i.name, i.owner ?? NONE, i.lease, i.expiredAt, String(i.vms.length)]);
  return `${alignColumns([["ACTION", "KIND", "NAMESPACE", "NAME", "OWNER", "LEASE", "EXPIRED", "VMS"], ...rows])}(dry run: nothing was changed)`;
}
