// `vireo migrate NAMESPACE/VM [--to HOST] [--cold] [--to-hypervisor TYPE [--new-macs]]`: asks the running
// Vireo to move a VM (a VirtualMachineMigration, in either mode, or a conversion to another hypervisor type)
// and reports its progress until it ends, as `kubectl wait` would — the exit status says how it ended; a
// conversion's pre-check is printed as soon as it ran. `vireo balance approve CLUSTER ID` applies one of a
// Manual cluster's balancing recommendations the same way.

import type { HostCluster, Hypervisor, VirtualMachineMigration } from "../api/types.ts";
import { findCondition } from "../api/conditions.ts";
import { isEnded } from "../planners/migration/request-status.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { listFromApi } from "./get.ts";
import { migrationRequest, readRequest, submit, type RequestTarget } from "./requests.ts";
import { readSnapshot } from "../state/state-dir.ts";
import { join } from "node:path";

const TARGET_FLAGS: FlagSpec = {
  "state-dir": { type: "string", default: ".vireo", help: "the state directory of a running file-mode `vireo run`" },
  kubeconfig: { type: "string", help: "ask through this cluster's API server (the API mode)" },
  wait: { type: "boolean", default: true, help: "follow the migration until it ends (--no-wait returns at once)" },
  timeout: { type: "string", default: "600", help: "seconds to follow it before giving up" },
};

const MIGRATE_FLAGS: FlagSpec = {
  ...TARGET_FLAGS,
  to: { type: "string", help: "the host to move it to (placement chooses without it)" },
  cold: { type: "boolean", default: false, help: "shut the VM down, move it, power it on (a cold migration)" },
  "to-hypervisor": { type: "string", help: "convert it for another hypervisor type (esx, hyperv, kvm, xen): always cold" },
  "new-macs": { type: "boolean", default: false, help: "with --to-hypervisor: give its NICs new MAC addresses instead of keeping them" },
};

const HYPERVISORS: readonly Hypervisor[] = ["esx", "hyperv", "kvm", "xen"];

export async function migrate(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { flags, positionals } = parseArgs(argv, MIGRATE_FLAGS);
  const [id] = positionals;
  const match = /^([^/]+)\/([^/]+)$/.exec(id ?? "");
  if (!match) throw new UsageError("vireo migrate needs a VM as NAMESPACE/NAME");
  const hypervisor = flags["to-hypervisor"] as string | undefined;
  if (hypervisor !== undefined && !HYPERVISORS.includes(hypervisor as Hypervisor)) throw new UsageError(`--to-hypervisor must be one of ${HYPERVISORS.join(", ")}, got ${hypervisor}`);
  if (flags["new-macs"] && hypervisor === undefined) throw new UsageError("--new-macs goes with --to-hypervisor: only a conversion may change the MACs");
  const request = migrationRequest(match[1]!, match[2]!, {
    // A conversion is cold whatever the mode: asking for Cold says so in the object too.
    mode: flags["cold"] || hypervisor !== undefined ? "Cold" : "Live",
    ...(flags["to"] ? { targetHost: flags["to"] as string } : {}),
    ...(hypervisor !== undefined ? { targetHypervisor: hypervisor as Hypervisor, keepMacAddresses: !flags["new-macs"] } : {}),
  });
  return submitAndFollow(targetOf(flags), request, flags, out);
}

export async function balance(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { flags, positionals } = parseArgs(argv, TARGET_FLAGS);
  const [verb, clusterName, id] = positionals;
  if (verb !== "approve" || !clusterName || !id) throw new UsageError("usage: vireo balance approve CLUSTER RECOMMENDATION-ID");
  const target = targetOf(flags);
  const cluster = await readCluster(target, clusterName);
  if (!cluster) throw new UsageError(`HostCluster ${clusterName} not found`);
  const recommendations = cluster.status?.balancing?.recommendations ?? [];
  const chosen = recommendations.find((r) => r.id === id);
  if (!chosen) throw new UsageError(`HostCluster ${clusterName} recommends no move ${id} now${recommendations.length > 0 ? ` (it recommends ${recommendations.map((r) => r.id).join(", ")})` : ""}`);
  const [namespace, vm] = chosen.vm.split("/") as [string, string];
  const request = migrationRequest(namespace, vm, { mode: "Live", targetHost: chosen.to, labels: { "vireo.dev/recommendation": chosen.id, "vireo.dev/cluster": clusterName } });
  out(`approved ${chosen.id}: ${chosen.vm} from ${chosen.from} to ${chosen.to} (${chosen.reason})`);
  return submitAndFollow(target, request, flags, out);
}

function targetOf(flags: Readonly<Record<string, unknown>>): RequestTarget {
  return { stateDir: flags["state-dir"] as string, ...(flags["kubeconfig"] !== undefined ? { kubeconfig: flags["kubeconfig"] as string } : {}) };
}

async function readCluster(target: RequestTarget, name: string): Promise<HostCluster | undefined> {
  const all = target.kubeconfig !== undefined
    ? await listFromApi(target.kubeconfig, "HostCluster")
    : (readSnapshot(join(target.stateDir, "objects.json"))?.objects ?? []).map((e) => e.object);
  return all.find((o) => o.kind === "HostCluster" && o.metadata.name === name) as HostCluster | undefined;
}

async function submitAndFollow(target: RequestTarget, request: VirtualMachineMigration, flags: Readonly<Record<string, unknown>>, out: (line: string) => void): Promise<number> {
  await submit(target, request);
  const { namespace, name } = request.metadata as { namespace: string; name: string };
  out(`virtualmachinemigration.vireo.dev/${name} created in namespace ${namespace}`);
  if (!flags["wait"]) return 0;
  const deadline = Date.now() + Number(flags["timeout"]) * 1000;
  let said = "";
  let toldPreCheck = false;
  for (;;) {
    const current = await readRequest(target, namespace, name);
    const line = progressLine(current);
    if (line !== said) out(line);
    said = line;
    const preCheck = current?.status?.preCheck;
    if (preCheck && !toldPreCheck) for (const told of preCheckLines(preCheck)) out(told);
    toldPreCheck ||= preCheck !== undefined;
    if (current && isEnded(current.status?.phase)) return current.status?.phase === "Succeeded" ? 0 : 1;
    if (Date.now() > deadline) {
      out(`still ${current?.status?.phase ?? "not seen"} after ${String(flags["timeout"])} s; it goes on without this command`);
      return 2;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A conversion's pre-check, once: from and to, the expected time, each blocker and warning. */
function preCheckLines(p: NonNullable<NonNullable<VirtualMachineMigration["status"]>["preCheck"]>): string[] {
  return [
    `pre-check ${p.from} → ${p.to}: ${p.blockers.length > 0 ? "refused" : "passed"}; ${p.diskMiB} MiB of disks, ~${Math.ceil(p.estimatedSeconds)} s to convert`,
    ...p.blockers.map((b) => `  blocker: ${b}`),
    ...p.warnings.map((w) => `  warning: ${w}`),
  ];
}

function progressLine(request: VirtualMachineMigration | undefined): string {
  if (!request?.status?.phase) return "Pending: waiting for Vireo to see the request";
  const s = request.status;
  const estimate = s.estimate && s.phase === "Pending" ? ` (expected: ${s.estimate.converges ? `${s.estimate.rounds} rounds, ${s.estimate.downtimeMs} ms downtime, ${s.estimate.durationSeconds} s` : `no convergence: ${s.estimate.reason}`})` : "";
  return `${s.phase}: ${findCondition(s.conditions, "Ready")?.message ?? ""}${estimate}`;
}
