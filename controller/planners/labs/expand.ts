// What a LabTopology is made of: its copies (per platform and copy index), and in each copy every tier's
// VMs, as ordinary VirtualMachines — labelled with the lab, copy and tier, owned by the lab (so Kubernetes'
// garbage collector removes them with it), spread over hosts, on their own platform, with the addresses
// and MACs the allocator gave their NICs. Pure.

import type { Hypervisor, LabAddress, LabTier, LabTopology, VirtualMachine } from "../../api/types.ts";
import { API_VERSION, COPY_LABEL, LAB_LABEL, TIER_LABEL } from "../../api/types.ts";
import { fnv1a } from "../macs.ts";
import type { NicRequest } from "./addresses.ts";

/** The annotation that names the template a lab VM was made from: a changed template replaces the VM. */
export const TEMPLATE_ANNOTATION = "vireo.dev/lab-template";

export interface LabCopy {
  /** `<platform>-<index>`, or `<index>` when the lab names no platforms. */
  name: string;
  platform?: Hypervisor;
}

/** One VM the lab wants, before its power state is decided. */
export interface LabVm {
  /** The VM's name: `<lab>-<copy>-<hostname>`. */
  name: string;
  copy: LabCopy;
  tier: LabTier;
  index: number;
  /** Its name within the copy, the same in every copy. */
  hostname: string;
}

export function copiesOf(lab: Readonly<LabTopology>): LabCopy[] {
  const indexes = Array.from({ length: lab.spec.copies }, (_, i) => i);
  if (lab.spec.platforms.length === 0) return indexes.map((i) => ({ name: String(i) }));
  return lab.spec.platforms.flatMap((platform) => indexes.map((i) => ({ name: `${platform}-${i}`, platform })));
}

export function hostnameOf(tier: Readonly<LabTier>, index: number): string {
  const override = tier.overrides.find((o) => o.index === index)?.hostname;
  return override ?? tier.hostnamePattern.replaceAll("{tier}", tier.name).replaceAll("{index}", String(index));
}

/** Every VM the lab wants, copy by copy, tier by tier, in index order. */
export function labVms(lab: Readonly<LabTopology>): LabVm[] {
  const vms: LabVm[] = [];
  for (const copy of copiesOf(lab)) {
    for (const tier of lab.spec.tiers) {
      for (let index = 0; index < tier.replicas; index++) {
        const hostname = hostnameOf(tier, index);
        vms.push({ name: `${lab.metadata.name}-${copy.name}-${hostname}`, copy, tier, index, hostname });
      }
    }
  }
  return vms;
}

/** The NICs the allocator must address: each VM's, on each of its tier's networks. */
export function nicRequests(vms: readonly LabVm[]): NicRequest[] {
  return vms.flatMap((vm) => vm.tier.networks.map((network) => {
    const fixed = vm.tier.overrides.find((o) => o.index === vm.index)?.addresses?.[network];
    return { vm: vm.name, copy: vm.copy.name, vmInCopy: vm.hostname, network, ...(fixed ? { fixedAddress: fixed } : {}) };
  }));
}

/** A short, stable digest of a tier's template: VMs made from another digest are replaced. */
export function templateDigest(tier: Readonly<LabTier>): string {
  return fnv1a(JSON.stringify(tier.template)).toString(16).padStart(8, "0");
}

/**
 * The VirtualMachine for one lab VM, as declared: `runStrategy` says whether the lab's order lets it run
 * now. Its NICs ride on their networks' uplinks, with the MACs the allocator chose (`addresses`: this VM's).
 */
export function labVirtualMachine(lab: Readonly<LabTopology>, vm: Readonly<LabVm>, addresses: readonly LabAddress[], runStrategy: "Always" | "Halted"): VirtualMachine {
  const namespace = lab.metadata.namespace ?? "default";
  const labels = { [LAB_LABEL]: lab.metadata.name, [COPY_LABEL]: vm.copy.name, [TIER_LABEL]: vm.tier.name };
  const networks = vm.tier.networks.map((name) => {
    const network = lab.spec.networks.find((n) => n.name === name);
    const mac = addresses.find((a) => a.vm === vm.name && a.network === name)?.macAddress;
    return { name: network?.uplink ?? name, ...(mac ? { macAddress: mac } : {}) };
  });
  const template = vm.tier.template;
  return {
    apiVersion: API_VERSION,
    kind: "VirtualMachine",
    metadata: {
      name: vm.name,
      namespace,
      labels,
      annotations: { [TEMPLATE_ANNOTATION]: templateDigest(vm.tier) },
      ownerReferences: [{ apiVersion: API_VERSION, kind: "LabTopology", name: lab.metadata.name, uid: lab.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      runStrategy,
      cpu: template.cpu,
      memoryMiB: template.memoryMiB,
      cpuFeatures: [...template.cpuFeatures],
      disks: template.disks.map((d) => ({ ...d })),
      networks,
      placement: {
        cluster: lab.spec.cluster,
        ...(vm.copy.platform ? { hypervisor: vm.copy.platform } : {}),
        // A tier's VMs spread over hosts by default: losing one host loses one instance of a tier.
        vmAntiAffinity: { preferred: [{ weight: 50, term: { labelSelector: { matchLabels: labels }, topologyKey: "vireo.dev/host" } }] },
      },
      migration: template.migration ? { ...template.migration } : { policy: "LiveIfPossible" },
      ...(template.workload ? { workload: { ...template.workload } } : {}),
      owner: lab.spec.owner,
    },
  };
}

/**
 * A tier whose networks ride on the same uplink would give its VMs two NICs on one host network, which a
 * VirtualMachine cannot declare (its networks are keyed by name): refused with the reason.
 */
export function uplinkProblem(lab: Readonly<LabTopology>): { reason: string; message: string } | undefined {
  for (const tier of lab.spec.tiers) {
    const seen = new Map<string, string>();
    for (const name of tier.networks) {
      const uplink = lab.spec.networks.find((n) => n.name === name)?.uplink ?? name;
      const other = seen.get(uplink);
      if (other !== undefined) return { reason: "SharedUplink", message: `tier ${tier.name}: networks ${other} and ${name} both ride on uplink ${uplink}; give them different uplinks` };
      seen.set(uplink, name);
    }
  }
  return undefined;
}
