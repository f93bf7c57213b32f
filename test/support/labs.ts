// Lab topologies on the virtual clock: a cluster whose hosts carry the `lab` uplink network (three esx and
// two kvm hosts unless told otherwise), and lab manifests with tiers, dependencies, networks and leases.

import { Scenario, clusterYaml, condition, hostYaml } from "./scenario.ts";
import type { LabTopology, VirtualMachine } from "../../controller/api/types.ts";
import { LAB_LABEL, objectKey } from "../../controller/api/types.ts";
import assert from "node:assert/strict";

export function labFleetYaml(hosts: readonly { name: string; hypervisor: string }[] = [
  { name: "esx-1", hypervisor: "esx" }, { name: "esx-2", hypervisor: "esx" }, { name: "esx-3", hypervisor: "esx" },
  { name: "kvm-1", hypervisor: "kvm" }, { name: "kvm-2", hypervisor: "kvm" },
]): string {
  return clusterYaml("labs") + hosts.map((h) => hostYaml(h.name, { cluster: "labs", hypervisor: h.hypervisor, cores: 32, memoryMiB: 131072, networks: ["lab", "prod"] })).join("");
}

export interface TierOptions {
  replicas?: number;
  dependsOn?: string;
  memoryMiB?: number;
  networks?: string[];
  stop?: string;
  extra?: string;
}

export function tierYaml(name: string, o: TierOptions = {}): string {
  return `  - name: ${name}
    replicas: ${o.replicas ?? 1}
    template: {cpu: 1, memoryMiB: ${o.memoryMiB ?? 2048}, cpuFeatures: [], disks: [{name: root, sizeGiB: 10, datastore: shared}]}
    networks: [${(o.networks ?? ["lab-net"]).join(", ")}]
${o.dependsOn ? `    dependsOn: [${o.dependsOn}]\n` : ""}${o.stop ? `    stop: ${o.stop}\n` : ""}${o.extra ?? ""}`;
}

export function labYaml(name: string, tiers: string, options: { copies?: number; platforms?: string[]; networks?: string; lease?: string; running?: boolean; labels?: string } = {}): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: LabTopology
metadata: {name: ${name}, namespace: default${options.labels ? `, labels: ${options.labels}` : ""}}
spec:
  owner: qa-team
  cluster: labs
  running: ${options.running ?? true}
  copies: ${options.copies ?? 1}
  platforms: [${(options.platforms ?? []).join(", ")}]
  networks: ${options.networks ?? "[{name: lab-net, cidr: 10.10.0.0/24, mode: Isolated, uplink: lab}]"}
${options.lease ? `  lease: ${options.lease}\n` : ""}  tiers:
${tiers}---
`;
}

export function lab(s: Scenario, name: string): LabTopology {
  const found = s.store.get(objectKey("LabTopology", name, "default")) as LabTopology | undefined;
  assert.ok(found, `no LabTopology ${name}`);
  return found;
}

export function labVmsOf(s: Scenario, name: string): VirtualMachine[] {
  return s.vms().filter((vm) => vm.metadata.labels?.[LAB_LABEL] === name);
}

export function isReady(vm: VirtualMachine): boolean {
  return vm.status?.phase === "Running" && condition(vm, "Ready")?.status === "True";
}
