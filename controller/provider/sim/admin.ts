// Changes an administrator can make on the hosts behind Vireo's back, as in a hypervisor's own console:
// power a VM off or on, move it to another host, change its memory or networks, start a VM Vireo does not
// know. They are not part of HypervisorProvider: the controller never calls them, it only sees their
// consequences in the next observation (as drift).

import { ProviderError } from "../provider.ts";
import type { VmConfig } from "../../core/observation.ts";
import { requireHost, requireVm } from "./faults.ts";
import type { SimContext } from "./faults.ts";
import { checkHostCanRun, checkRoom } from "./hosts.ts";
import { acquireLocks, lockHeldElsewhere, releaseLocks } from "./locks.ts";
import { refuseWhileConverting } from "./conversion.ts";
import { refuseMoveOfProtected } from "./fault-tolerance.ts";
import { refuseWhileMigrating } from "./migrations.ts";
import { allocatedOn } from "./observation.ts";
import { powerOff, powerOn } from "./vms.ts";
import { attachVm, copyVmConfig, detachVm, isPoweredOn, isReachable, touch } from "./world.ts";
import type { HostRecord, VmRecord } from "./world.ts";

/** What an administrator gives to create a VM by hand. */
export interface ManualVmSpec {
  cpu: number;
  memoryMiB: number;
  networks?: string[];
}

function reachableHost(ctx: SimContext, name: string): HostRecord {
  const host = requireHost(ctx.world, name);
  if (!isReachable(host)) throw new ProviderError("Unavailable", `host ${name} is not responding`);
  return host;
}

function vmOnReachableHost(ctx: SimContext, id: string): { vm: VmRecord; host: HostRecord } {
  const vm = requireVm(ctx.world, id);
  return { vm, host: reachableHost(ctx, vm.host) };
}

/** Pulls the plug from the host's console: Off at once, lastExit ManualPowerOff. A no-op when already off. */
export function adminPowerOff(ctx: SimContext, id: string): void {
  const { vm } = vmOnReachableHost(ctx, id);
  if (vm.power === "Off") return;
  powerOff(ctx.world, vm, ctx.now(), "ManualPowerOff");
  ctx.syncTransition(vm);
  ctx.changed();
}

/** Powers the VM on where it is registered, with the configuration it has there. A no-op when on. */
export function adminPowerOn(ctx: SimContext, id: string): void {
  const { vm, host } = vmOnReachableHost(ctx, id);
  if (isPoweredOn(vm.power)) return;
  refuseWhileConverting(ctx.world, id, "be powered on");
  checkHostCanRun(host, id, vm.config);
  const lock = lockHeldElsewhere(ctx.world, id, vm.config, host.name, ctx.now(), ctx.timings);
  if (lock) throw new ProviderError("LockHeld", `VM ${id}: disk ${lock.disk} is locked by host ${lock.host}`);
  checkRoom(host, allocatedOn(ctx.world, host.name), id, vm.config);
  powerOn(ctx.world, vm, ctx.now(), ctx.timings, host.slowdown);
  ctx.syncTransition(vm);
  ctx.changed();
}

/**
 * Moves the VM to another host as a hand-made live migration would, keeping its power state and config:
 * a running VM keeps running there (its disk locks move with it).
 */
export function adminMove(ctx: SimContext, id: string, target: string): void {
  const { vm } = vmOnReachableHost(ctx, id);
  const to = reachableHost(ctx, target);
  if (vm.host === target) return;
  refuseWhileMigrating(ctx.world, id, "be moved by hand");
  refuseWhileConverting(ctx.world, id, "be moved by hand");
  refuseMoveOfProtected(ctx.world, id, target);
  checkHostCanRun(to, id, vm.config);
  const on = isPoweredOn(vm.power);
  if (on) checkRoom(to, allocatedOn(ctx.world, target), id, vm.config);
  if (on) releaseLocks(ctx.world, vm);
  detachVm(ctx.world, vm);
  vm.host = target;
  attachVm(ctx.world, vm);
  if (on) acquireLocks(ctx.world, vm, ctx.now());
  touch(ctx.world, vm);
  ctx.changed();
}

/** Changes the VM's memory in place (a hot change while it runs, as vSphere's memory hot-add allows). */
export function adminSetMemory(ctx: SimContext, id: string, memoryMiB: number): void {
  if (!Number.isInteger(memoryMiB) || memoryMiB < 1) throw new ProviderError("Invalid", `memoryMiB must be a positive integer, got ${memoryMiB}`);
  const { vm, host } = vmOnReachableHost(ctx, id);
  if (vm.config.memoryMiB === memoryMiB) return;
  refuseWhileMigrating(ctx.world, id, "change its memory");
  if (isPoweredOn(vm.power) && memoryMiB > vm.config.memoryMiB) {
    const allocated = allocatedOn(ctx.world, host.name);
    checkRoom(host, { cpu: allocated.cpu - vm.config.cpu, memoryMiB: allocated.memoryMiB - vm.config.memoryMiB }, id, { ...vm.config, memoryMiB });
  }
  vm.config = { ...copyVmConfig(vm.config), memoryMiB };
  touch(ctx.world, vm);
  ctx.changed();
}

/**
 * Connects the VM to exactly these networks: a NIC it keeps keeps its MAC, a new NIC gets a MAC from the
 * administrator's range (02:ad:…, locally administered).
 */
export function adminSetNetworks(ctx: SimContext, id: string, networks: readonly string[]): void {
  const { vm, host } = vmOnReachableHost(ctx, id);
  const nics = networks.map((network) => vm.config.nics.find((n) => n.network === network) ?? { network, macAddress: adminMac(id, network) });
  refuseWhileMigrating(ctx.world, id, "change its networks");
  const config: VmConfig = { ...copyVmConfig(vm.config), nics: nics.map((n) => ({ ...n })) };
  checkHostCanRun(host, id, config);
  vm.config = config;
  touch(ctx.world, vm);
  ctx.changed();
}

/** Creates and powers on a VM that no controller asked for (no `managedBy`): Vireo must report it, not delete it. */
export function adminCreate(ctx: SimContext, id: string, hostName: string, spec: ManualVmSpec): void {
  if (!/^[^/]+\/[^/]+$/.test(id)) throw new ProviderError("Invalid", `VM id must be namespace/name, got ${id}`);
  if (ctx.world.vms.has(id)) throw new ProviderError("Conflict", `VM ${id} already exists on host ${ctx.world.vms.get(id)!.host}`);
  if (!Number.isInteger(spec.cpu) || spec.cpu < 1) throw new ProviderError("Invalid", `cpu must be a positive integer, got ${spec.cpu}`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 1) throw new ProviderError("Invalid", `memoryMiB must be a positive integer, got ${spec.memoryMiB}`);
  const host = reachableHost(ctx, hostName);
  const config: VmConfig = {
    cpu: spec.cpu,
    memoryMiB: spec.memoryMiB,
    cpuFeatures: [],
    disks: [],
    nics: (spec.networks ?? []).map((network) => ({ network, macAddress: adminMac(id, network) })),
    workload: { profile: "Steady", cpuPercent: 20 },
  };
  checkHostCanRun(host, id, config);
  checkRoom(host, allocatedOn(ctx.world, hostName), id, config);
  const now = ctx.now();
  const vm: VmRecord = { id, host: hostName, config, power: "Off", since: now, guestHung: false, revision: 0 };
  attachVm(ctx.world, vm);
  powerOn(ctx.world, vm, now, ctx.timings, host.slowdown);
  ctx.syncTransition(vm);
  ctx.changed();
}

/** A stable, locally administered MAC for a NIC an administrator added. */
function adminMac(id: string, network: string): string {
  let hash = 2166136261;
  for (const ch of `${id}#${network}`) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
  const bytes = [0x02, 0xad, (hash >>> 24) & 0xff, (hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}
