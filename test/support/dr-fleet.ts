// A two-site fleet for replication and disaster recovery: cluster prod (datastore prod-ds, network prod)
// and cluster dr (datastore dr-ds, networks dr-net and dr-test), VMs in prod replicated to dr with the
// prod network mapped to dr-net, and HAPolicies that protect them by replica in three priorities.

import { Scenario, clusterYaml, condition, hostYaml } from "./scenario.ts";
import type { ScenarioOptions } from "./scenario.ts";
import type { VirtualMachine } from "../../controller/api/types.ts";

export const PROD_HOSTS = ["prod-1", "prod-2", "prod-3"];
export const DR_HOSTS = ["dr-1", "dr-2", "dr-3"];

export interface DrVm {
  name: string;
  tier: "db" | "app" | "web" | "none";
  rpoSeconds?: number;
  /** Disk writes, MiB/s. */
  writeRate?: number;
  diskGiB?: number;
  replicated?: boolean;
  keepMacs?: boolean;
}

export function drVmYaml(v: DrVm): string {
  const replication = v.replicated === false ? "" : `  replication:
    targetCluster: dr
    rpoSeconds: ${v.rpoSeconds ?? 300}
    instances: 2
    networkMapping: [{source: prod, target: dr-net}]
    keepMacAddresses: ${v.keepMacs ?? true}
`;
  return `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: ${v.name}, namespace: default, labels: {tier: ${v.tier}, site: prod}}
spec:
  runStrategy: Always
  cpu: 2
  memoryMiB: 4096
  cpuFeatures: []
  disks: [{name: root, sizeGiB: ${v.diskGiB ?? 20}, datastore: prod-ds}]
  networks: [{name: prod}]
  placement: {cluster: prod}
  workload: {profile: Steady, cpuPercent: 20, diskWriteRateMiBps: ${v.writeRate ?? 0.5}}
${replication}---
`;
}

function policyYaml(name: string, tier: string, priority: string, protection: string, readyCondition = "PoweredOn"): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {tier: ${tier}}}
  restartPriority: ${priority}
  readyCondition: ${readyCondition}
  protection: ${protection}
---
`;
}

/** Both sites, the policies, and the VMs; the prod link carries `bandwidthMiBps`. */
export function drFleetYaml(vms: readonly DrVm[], options: { bandwidthMiBps?: number } = {}): string {
  let yaml = clusterYaml("prod").replace("  placement: {strategy: Spread}\n", `  placement: {strategy: Spread}\n  replication: {bandwidthMiBps: ${options.bandwidthMiBps ?? 100}}\n`);
  yaml += clusterYaml("dr");
  yaml += PROD_HOSTS.map((h) => hostYaml(h, { cluster: "prod", cores: 32, memoryMiB: 131072, datastores: ["prod-ds"], networks: ["prod"] })).join("");
  yaml += DR_HOSTS.map((h) => hostYaml(h, { cluster: "dr", cores: 32, memoryMiB: 131072, datastores: ["dr-ds"], networks: ["dr-net", "dr-test"] })).join("");
  // The databases answer (guest heartbeat) before the apps start, as Site Recovery Manager's dependent VMs.
  yaml += policyYaml("db", "db", "Highest", "Replicate", "GuestHeartbeat");
  yaml += policyYaml("app", "app", "Medium", "Replicate");
  yaml += policyYaml("web", "web", "Low", "Replicate");
  yaml += policyYaml("plain", "none", "Medium", "Restart");
  return yaml + vms.map(drVmYaml).join("");
}

export async function startDrFleet(vms: readonly DrVm[], options: { bandwidthMiBps?: number } & ScenarioOptions = {}): Promise<Scenario> {
  return Scenario.start(drFleetYaml(vms, options), options);
}

export function ready(vm: VirtualMachine): boolean {
  return vm.status?.phase === "Running" && condition(vm, "Ready")?.status === "True";
}

/** Every replicated VM of the scenario has a replica within its RPO. */
export function allReplicated(s: Scenario, names: readonly string[]): boolean {
  return names.every((n) => condition(s.vm(n), "Replicated")?.status === "True");
}

export function recoveryPlanYaml(name: string, action: string, extra = "", selector = "{matchLabels: {site: prod}}"): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: RecoveryPlan
metadata: {name: ${name}, namespace: default}
spec:
  selector: ${selector}
  action: ${action}
${extra}---
`;
}
