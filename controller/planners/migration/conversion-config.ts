// What a converted VM is made of on its new platform: its spec's configuration on the target host, each
// NIC with the model it names or the target's paravirtual one, its firmware; and, when a request gives up
// the MAC addresses, the new ones — from the same assignment as every MAC Vireo gives. Pure.

import type { Host, HostCluster, Hypervisor, VirtualMachine, VmStatusNetwork } from "../../api/types.ts";
import type { VmConfig } from "../../core/observation.ts";
import { desiredConfig } from "../lifecycle.ts";
import { assignMacs } from "../macs.ts";
import { nicModelOn } from "./platforms.ts";

/** The VM's configuration on `target` (a host of type `to`), with `networks`' MACs. */
export function convertedConfig(vm: Readonly<VirtualMachine>, networks: readonly VmStatusNetwork[], cluster: Readonly<HostCluster>, target: Readonly<Host>, to: Hypervisor, extra: Partial<VmConfig> = {}): VmConfig {
  const base = desiredConfig(vm, networks, cluster, target.spec.cpu.features);
  const nics = base.nics.map((nic, i) => ({ ...nic, model: nicModelOn(to, vm.spec.networks[i]?.model) }));
  return { ...base, ...extra, nics, ...(vm.spec.firmware ? { firmware: vm.spec.firmware } : {}) };
}

/**
 * New MACs for the VM's NICs: the ones its spec gives stay (the spec decides them), the others are assigned
 * afresh, never one it has now nor one `taken` holds.
 */
export function renewedMacs(vm: Readonly<VirtualMachine>, current: readonly VmStatusNetwork[], taken: ReadonlySet<string>): VmStatusNetwork[] {
  const old = new Set(current.map((n) => n.macAddress));
  return assignMacs({ ...vm, status: { ...vm.status, networks: [] } }, { has: (mac) => old.has(mac) || taken.has(mac) });
}

/** Whether two lists of NICs have the same MACs in the same order. */
export function sameMacs(a: readonly { macAddress: string }[], b: readonly { macAddress: string }[]): boolean {
  return a.length === b.length && a.every((n, i) => n.macAddress === b[i]?.macAddress);
}
