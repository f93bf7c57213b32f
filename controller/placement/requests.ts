// What placement needs to know of a VirtualMachine: its size, its needs and its rules.

import type { VirtualMachine } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import type { VmRequest } from "./types.ts";

/** The placement request of a declared VM. */
export function requestOf(vm: Readonly<VirtualMachine>): VmRequest {
  return {
    id: vmId(vm),
    namespace: vm.metadata.namespace ?? "default",
    labels: vm.metadata.labels ?? {},
    cpu: vm.spec.cpu,
    memoryMiB: vm.spec.memoryMiB,
    cpuFeatures: vm.spec.cpuFeatures,
    datastores: [...new Set(vm.spec.disks.map((d) => d.datastore))],
    networks: vm.spec.networks.map((n) => n.name),
    placement: vm.spec.placement,
  };
}

