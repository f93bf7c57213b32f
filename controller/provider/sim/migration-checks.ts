// Why a live migration cannot begin, found before anything is copied, in the order a hypervisor's
// management would find it: who is asked (the source), what is asked (a running VM, another host), what
// the target is (the same CPU vendor and every feature the guest sees, its storage and networks), and
// whether the target can be reached and has room, counting what it already holds for other migrations.

import { ProviderError } from "../provider.ts";
import { checkRoom } from "./hosts.ts";
import { allocatedOn, hostOf } from "./observation.ts";
import { allPathsDownSince } from "./storage.ts";
import { isReachable } from "./world.ts";
import type { HostRecord, MigrationRecord, VmRecord, World } from "./world.ts";

/** Throws the ProviderError that refuses moving `vm` to `target`; returns when the migration may begin. */
export function refuseMigration(world: World, vm: VmRecord, target: HostRecord, underWay: MigrationRecord | undefined): void {
  const source = hostOf(world, vm);
  refuseRequest(vm, source, target, underWay);
  const incompatible = incompatibility(vm, source, target);
  if (incompatible !== undefined) throw new ProviderError("Incompatible", `VM ${vm.id} cannot migrate live to host ${target.name}: ${incompatible}`);
  refuseTarget(world, vm, target);
}

/** The source must answer, and the VM must be running there and not migrating already. */
function refuseRequest(vm: VmRecord, source: HostRecord, target: HostRecord, underWay: MigrationRecord | undefined): void {
  if (!isReachable(source)) throw new ProviderError("Unavailable", `VM ${vm.id}'s host ${source.name} is not responding`);
  if (underWay) throw new ProviderError("Conflict", `VM ${vm.id} is already migrating to host ${underWay.target} (key ${underWay.key})`);
  if (target.name === source.name) throw new ProviderError("Conflict", `VM ${vm.id} already runs on host ${target.name}`);
  if (vm.power !== "Running") throw new ProviderError("Conflict", `VM ${vm.id} is ${vm.power}: only a running VM migrates live`);
}

/** The target must answer, reach the VM's disks, and have room beside what it holds already. */
export function refuseTarget(world: World, vm: VmRecord, target: HostRecord): void {
  if (!isReachable(target)) throw new ProviderError("Unavailable", `host ${target.name} is not responding`);
  for (const disk of vm.config.disks) {
    if (allPathsDownSince(target, disk.datastore) !== undefined) {
      throw new ProviderError("Unavailable", `host ${target.name} has all paths down to datastore ${disk.datastore}; VM ${vm.id}'s disk ${disk.name} is unreachable from it`);
    }
  }
  checkRoom(target, allocatedOn(world, target.name), vm.id, vm.config);
}

/**
 * What makes the target unable to run this guest as it runs now, or undefined. A running guest cannot
 * change hypervisor (that takes a conversion, cold). It keeps its CPU across the move, so the vendor
 * must match (BEHAVIOUR.md, Live migration: Intel↔AMD is refused) and the target must have every
 * feature the guest sees; its disks and NICs must be reachable there too.
 */
export function incompatibility(vm: VmRecord, source: HostRecord, target: HostRecord): string | undefined {
  const hypervisor = target.config.hypervisor;
  if (hypervisor !== source.config.hypervisor) return `it runs ${hypervisor}, the guest runs on ${source.config.hypervisor} (host ${source.name}); a running guest cannot change hypervisor`;
  const from = source.config.cpu.vendor;
  const to = target.config.cpu.vendor;
  if (from !== to) return `its CPU vendor is ${to}, the guest runs on ${from} (host ${source.name}); a guest cannot change CPU vendor while it runs`;
  const missing = vm.config.cpuFeatures.filter((feature) => !target.config.cpu.features.includes(feature));
  if (missing.length > 0) return `it lacks CPU feature${missing.length === 1 ? "" : "s"} ${missing.join(", ")} that the guest sees`;
  const datastores = vm.config.disks.filter((disk) => !target.config.datastores.includes(disk.datastore)).map((disk) => disk.datastore);
  if (datastores.length > 0) return `it does not see datastore ${[...new Set(datastores)].join(", ")} of the guest's disks`;
  const networks = vm.config.nics.filter((nic) => !target.config.networks.includes(nic.network)).map((nic) => nic.network);
  if (networks.length > 0) return `it is not connected to network ${[...new Set(networks)].join(", ")} of the guest`;
  return undefined;
}
