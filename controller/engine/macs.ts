// The fleet-wide registry of MAC addresses, so an assigned MAC is unique across every VM Vireo knows.

import type { VirtualMachine, VmStatusNetwork } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import { assignMacs } from "../planners/macs.ts";

export class MacRegistry {
  private readonly owners = new Map<string, string>();
  private readonly byVm = new Map<string, VmStatusNetwork[]>();

  /** The VM's MACs: kept from before when it has them, else assigned now; records them as taken. */
  macsFor(vm: Readonly<VirtualMachine>): VmStatusNetwork[] {
    const id = vmId(vm);
    const known = this.byVm.get(id);
    if (known && sameNetworks(known, vm)) return known;
    const taken = { has: (mac: string) => { const owner = this.owners.get(mac); return owner !== undefined && owner !== id; } };
    const networks = assignMacs(known ? { ...vm, status: { ...vm.status, networks: known } } : vm, taken);
    this.record(id, networks);
    return networks;
  }

  /** Takes note of MACs already assigned (from status at start-up), before any new assignment. */
  adopt(vm: Readonly<VirtualMachine>): void {
    const networks = vm.status?.networks;
    if (networks && networks.length > 0) this.record(vmId(vm), networks.map((n) => ({ ...n })));
  }

  /** The VM that owns a MAC other than `id`, if any (a conflict when a spec gives the same MAC twice). */
  ownerOf(mac: string): string | undefined {
    return this.owners.get(mac);
  }

  release(id: string): void {
    for (const n of this.byVm.get(id) ?? []) if (this.owners.get(n.macAddress) === id) this.owners.delete(n.macAddress);
    this.byVm.delete(id);
  }

  private record(id: string, networks: VmStatusNetwork[]): void {
    this.release(id);
    this.byVm.set(id, networks);
    for (const n of networks) if (!this.owners.has(n.macAddress)) this.owners.set(n.macAddress, id);
  }
}

function sameNetworks(known: readonly VmStatusNetwork[], vm: Readonly<VirtualMachine>): boolean {
  if (known.length !== vm.spec.networks.length) return false;
  return vm.spec.networks.every((n, i) => known[i]?.name === n.name && (n.macAddress === undefined || n.macAddress.toLowerCase() === known[i]?.macAddress));
}
