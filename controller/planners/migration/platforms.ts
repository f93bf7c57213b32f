// What each hypervisor type can give a VM, for conversions between them (V2V): the NIC models and firmware
// it offers, how many vCPUs one VM may have, its paravirtual NIC (what a NIC that names no model is), and
// the guest agent its VMs need. docs/migration.md carries the same table.
//
// Sources: VMware's configuration maximums (vSphere 8: 768 vCPUs per VM) and its virtual NIC types; QEMU's
// NIC models and RHEL's supported KVM limits (710 vCPUs per guest); Hyper-V's synthetic and legacy network
// adapters and its maximums (Windows Server 2022, generation 2: 240 vCPUs); Xen's netfront and the
// emulated NICs of HVM guests, its guest limit of 128 vCPUs, and no Secure Boot for its guests.

import type { Firmware, Hypervisor, NicModel } from "../../api/types.ts";

export interface Platform {
  /** The NIC models a VM of this type may have. */
  nicModels: readonly NicModel[];
  /** The platform's paravirtual NIC: what a NIC that names no model becomes. */
  paravirtualNic: NicModel;
  firmware: readonly Firmware[];
  /** The most vCPUs one VM may have. */
  maxVcpus: number;
  /** The guest agent its VMs run: the guest heartbeat, VM monitoring and a clean shutdown depend on it. */
  guestAgent: string;
}

export const PLATFORMS: Readonly<Record<Hypervisor, Platform>> = Object.freeze({
  esx: { nicModels: ["vmxnet3", "e1000", "e1000e"], paravirtualNic: "vmxnet3", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 768, guestAgent: "VMware Tools" },
  kvm: { nicModels: ["virtio", "e1000", "e1000e", "rtl8139"], paravirtualNic: "virtio", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 710, guestAgent: "qemu-guest-agent" },
  hyperv: { nicModels: ["netvsc", "legacy"], paravirtualNic: "netvsc", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 240, guestAgent: "Hyper-V Integration Services" },
  xen: { nicModels: ["netfront", "e1000", "rtl8139"], paravirtualNic: "netfront", firmware: ["BIOS", "EFI"], maxVcpus: 128, guestAgent: "the Xen guest utilities" },
});

/** The firmware a VM boots with when it names none. */
export const DEFAULT_FIRMWARE: Firmware = "BIOS";

/** The model of a NIC on `hypervisor`: the one it names, else the platform's paravirtual one. */
export function nicModelOn(hypervisor: Hypervisor, declared: NicModel | undefined): NicModel {
  return declared ?? PLATFORMS[hypervisor].paravirtualNic;
}
