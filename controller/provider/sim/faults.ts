// Out-of-band events the simulator can be told to make happen: a host crashes, recovers, is cut off
// from the network or loses storage paths; a guest shuts itself down, crashes or hangs. These are not
// part of HypervisorProvider: the controller never calls them, it only sees their consequences.

import { ProviderError } from "../provider.ts";
import { storageFenceDueAt } from "./hosts.ts";
import { freezeLocksOf, pruneDeadLocks, releaseLocksOf } from "./locks.ts";
import { liveHostReport, reportVm } from "./observation.ts";
import { bootStorage, hostLeaseLost, setPathsUp, worstPathsUp } from "./storage.ts";
import type { SimTimings } from "./timings.ts";
import { beginShutdown, markOff, powerOff } from "./vms.ts";
import { isPoweredOn, touch, vmsOnHost } from "./world.ts";
import type { HostRecord, VmRecord, World } from "./world.ts";

/** What the fault functions need from the simulator that owns the world and its timers. */
export interface SimContext {
  readonly world: World;
  readonly timings: SimTimings;
  now(): number;
  /** Re-arms or cancels the VM's transition timer to match its record. */
  syncTransition(vm: VmRecord): void;
  /** Re-arms or cancels the host's storage-fence timer to match its record. */
  syncFence(host: HostRecord): void;
  /** Re-arms or cancels the host's isolation-response timer to match its record. */
  syncIsolation(host: HostRecord): void;
  /** The world changed: persist it. */
  changed(): void;
}

export function requireHost(world: World, name: string): HostRecord {
  const host = world.hosts.get(name);
  if (!host) throw new ProviderError("NotFound", `host ${name} is not registered`);
  return host;
}

export function requireVm(world: World, id: string): VmRecord {
  const vm = world.vms.get(id);
  if (!vm) throw new ProviderError("NotFound", `VM ${id} is not registered on any host`);
  return vm;
}

/**
 * The host dies: both heartbeats stop, its last report freezes, and every VM on it is off at once. Its
 * disk locks are no longer renewed and expire after the lease time. Crashing a crashed host is a no-op.
 */
export function crashHost(ctx: SimContext, name: string): void {
  const { world, timings } = ctx;
  const host = requireHost(world, name);
  if (host.crashedAt !== undefined) return;
  const now = ctx.now();
  const vms = vmsOnHost(world, name);
  // As written on its datastores: a partition that cut them off from observers hides it only while it lasts.
  host.lastReport = liveHostReport(world, host, now, timings, true);
  for (const vm of vms) vm.lastReport = reportVm(world, vm, now, timings);
  freezeLocksOf(world, name, now, timings);
  host.crashedAt = now;
  for (const vm of vms) {
    if (!isPoweredOn(vm.power)) continue;
    markOff(world, vm, now, "HostFailure");
    ctx.syncTransition(vm);
  }
  ctx.syncFence(host);
  ctx.syncIsolation(host);
  ctx.changed();
}

/**
 * The host boots again, empty: the VMs it had stay registered, Off, with lastExit HostFailure; nothing
 * is resurrected. A boot is a clean start: network and storage paths come back with it.
 */
export function recoverHost(ctx: SimContext, name: string): void {
  const { world } = ctx;
  const host = requireHost(world, name);
  if (host.crashedAt === undefined) return;
  const now = ctx.now();
  delete host.crashedAt;
  delete host.lastReport;
  delete host.isolatedAt;
  delete host.isolationRespondedAt;
  delete host.isolationEnforcedAt;
  delete host.partitionedAt;
  delete host.storageCutAt;
  delete host.storageLostAt;
  host.bootedAt = now;
  host.networkSince = now;
  host.storageSince = now;
  bootStorage(host, now);
  if (hostLeaseLost(host)) host.storageLostAt = now;
  releaseLocksOf(world, name);
  pruneDeadLocks(world, now, ctx.timings);
  for (const vm of vmsOnHost(world, name)) {
    delete vm.lastReport;
    touch(world, vm);
  }
  ctx.syncFence(host);
  ctx.syncIsolation(host);
  ctx.changed();
}

/** The host loses the network: its network heartbeat stops; it keeps its datastore heartbeat and VMs. */
export function isolateHost(ctx: SimContext, name: string): void {
  const host = requireHost(ctx.world, name);
  if (host.isolatedAt !== undefined) return;
  host.isolatedAt = ctx.now();
  ctx.syncIsolation(host);
  ctx.changed();
}

export function healIsolation(ctx: SimContext, name: string): void {
  const host = requireHost(ctx.world, name);
  if (host.isolatedAt === undefined) return;
  delete host.isolatedAt;
  delete host.isolationRespondedAt;
  delete host.isolationEnforcedAt;
  if (host.partitionedAt === undefined) host.networkSince = ctx.now();
  ctx.syncIsolation(host);
  ctx.changed();
}

/**
 * The isolated host applies each VM's isolation response (BEHAVIOUR.md, Failure detection): PowerOff pulls
 * the plug (releasing the disk locks, so HA may restart the VM elsewhere), Shutdown asks the guest, and a
 * guest still on `isolationShutdownTimeoutMs` later is powered off. LeavePoweredOn leaves it running.
 */
export function applyIsolationResponse(ctx: SimContext, host: HostRecord): void {
  if (host.isolatedAt === undefined || host.crashedAt !== undefined) return;
  const now = ctx.now();
  const firstPass = host.isolationRespondedAt === undefined;
  if (firstPass) host.isolationRespondedAt = now;
  else host.isolationEnforcedAt = now;
  for (const vm of vmsOnHost(ctx.world, host.name)) {
    if (!isPoweredOn(vm.power)) continue;
    const response = vm.config.isolationResponse ?? "LeavePoweredOn";
    if (response === "PowerOff" || (response === "Shutdown" && !firstPass)) {
      powerOff(ctx.world, vm, now, "IsolationResponse");
    } else if (response === "Shutdown" && vm.power !== "Stopping") {
      beginShutdown(ctx.world, vm, now, ctx.timings, host.slowdown);
      vm.stopCause = "IsolationResponse";
    } else {
      continue;
    }
    ctx.syncTransition(vm);
  }
  ctx.syncIsolation(host);
  ctx.changed();
}

/**
 * The hosts lose the network to the rest of the cluster; they still reach each other and their gateway.
 * With `storage` (a site cut off, its storage network with it) the observer also loses the datastores that
 * only they see (observation.ts, unreachableDatastores); the hosts themselves keep every path.
 */
export function partitionHosts(ctx: SimContext, names: readonly string[], storage = false): void {
  const hosts = names.map((name) => requireHost(ctx.world, name));
  const now = ctx.now();
  for (const host of hosts) {
    if (host.partitionedAt === undefined) host.partitionedAt = now;
    if (storage && host.storageCutAt === undefined) host.storageCutAt = now;
  }
  ctx.changed();
}

export function healPartition(ctx: SimContext, names: readonly string[]): void {
  const hosts = names.map((name) => requireHost(ctx.world, name));
  const now = ctx.now();
  for (const host of hosts) {
    delete host.storageCutAt;
    if (host.partitionedAt === undefined) continue;
    delete host.partitionedAt;
    if (host.isolatedAt === undefined) host.networkSince = now;
  }
  ctx.changed();
}

/** Boots and guest shutdowns on the host take `factor` times longer (an overloaded or throttled host). */
export function slowHost(ctx: SimContext, name: string, factor: number): void {
  const host = requireHost(ctx.world, name);
  if (!(factor >= 1) || !Number.isFinite(factor)) throw new ProviderError("Invalid", `slowdown factor must be at least 1, got ${factor}`);
  host.slowdown = factor;
  ctx.changed();
}

export function healSlowHost(ctx: SimContext, name: string): void {
  const host = requireHost(ctx.world, name);
  if (host.slowdown === undefined) return;
  delete host.slowdown;
  ctx.changed();
}

/**
 * The hung guest recovers by itself: its heartbeat resumes, and a shutdown it was asked for while hung
 * (the isolation response, a stop) is answered now — else the VM would stay Stopping forever.
 */
export function healGuestHang(ctx: SimContext, id: string): void {
  const vm = requireVm(ctx.world, id);
  if (!vm.guestHung) return;
  vm.guestHung = false;
  if (vm.power === "Running") {
    vm.guestSince = ctx.now();
    delete vm.guestStoppedAt;
  }
  if (vm.power === "Stopping" && vm.transitionDueAt === undefined) {
    vm.transitionDueAt = ctx.now() + ctx.timings.guestShutdownMs * (ctx.world.hosts.get(vm.host)?.slowdown ?? 1);
    ctx.syncTransition(vm);
  }
  touch(ctx.world, vm);
  ctx.changed();
}

/**
 * Sets how many of the host's storage paths (HBAs) reach `datastore`, or every datastore it sees when none
 * is named. With one or more, VMs run (degraded when some are down). With none to a datastore (APD), the
 * VMs with disks there freeze and the host stops renewing its locks there; vSphere's VM component
 * protection (the controller's) decides what happens to them. With none to any heartbeat datastore the
 * host lease is lost too: the datastore heartbeat and every lock renewal stop, and if no path returns
 * before the host's locks expire the host kills the VMs holding them (sanlock's fencing, BEHAVIOUR.md
 * "Locks and fencing": a host that lost its lease storage kills the VMs holding leases on expiry).
 */
export function setStoragePathsUp(ctx: SimContext, name: string, up: number, datastore?: string): void {
  const host = requireHost(ctx.world, name);
  if (!Number.isInteger(up) || up < 0 || up > host.config.storagePaths) {
    throw new ProviderError("Invalid", `host ${name} has ${host.config.storagePaths} storage paths; cannot have ${up} up`);
  }
  if (datastore !== undefined && !host.config.datastores.includes(datastore)) {
    throw new ProviderError("Invalid", `host ${name} does not see datastore ${datastore}`);
  }
  if (applyStoragePaths(ctx, host, up, datastore)) ctx.changed();
}

/** Applies a new count of working paths to one datastore, or to all; true when anything changed. */
export function applyStoragePaths(ctx: SimContext, host: HostRecord, up: number, datastore?: string): boolean {
  const now = ctx.now();
  // A fence that fell due before the paths came back has happened, whether or not its timer has fired.
  if (host.storageLostAt !== undefined) fenceIfDue(ctx, host);
  let changed = setPathsUp(host, datastore === undefined ? host.config.datastores : [datastore], up, now);
  if (datastore === undefined && host.config.datastores.length === 0 && host.storagePathsUp !== up) {
    host.storagePathsUp = up;
    changed = true;
  }
  host.storagePathsUp = worstPathsUp(host);
  return syncHostLease(ctx, host) || changed;
}

/** Starts or ends the host-lease loss to match the heartbeat datastores' paths; true when it changed. */
export function syncHostLease(ctx: SimContext, host: HostRecord): boolean {
  const lost = hostLeaseLost(host);
  const was = host.storageLostAt !== undefined;
  if (lost && !was) host.storageLostAt = ctx.now();
  if (!lost && was) {
    delete host.storageLostAt;
    host.storageSince = ctx.now();
  }
  ctx.syncFence(host);
  return lost !== was;
}

export function storageFenceDue(ctx: SimContext, host: HostRecord): boolean {
  if (host.crashedAt !== undefined) return false;
  const due = storageFenceDueAt(host, ctx.timings);
  return due !== undefined && ctx.now() >= due;
}

export function fenceIfDue(ctx: SimContext, host: HostRecord): void {
  if (storageFenceDue(ctx, host)) fenceStorageLoss(ctx, host);
}

/** The host kills every VM that holds disk locks, its leases having expired; they are off, locks released. */
export function fenceStorageLoss(ctx: SimContext, host: HostRecord): void {
  if (host.storageLostAt === undefined || host.crashedAt !== undefined) return;
  const now = ctx.now();
  let killed = false;
  for (const vm of vmsOnHost(ctx.world, host.name)) {
    if (!isPoweredOn(vm.power) || vm.config.disks.length === 0) continue;
    powerOff(ctx.world, vm, now, "PoweredOff");
    ctx.syncTransition(vm);
    killed = true;
  }
  if (killed) ctx.changed();
}

/** The guest OS shuts itself down. A Stopping VM simply finishes the shutdown it was asked for. */
export function guestShutdown(ctx: SimContext, id: string): void {
  const vm = runnableVm(ctx, id);
  if (vm.power === "Off") return;
  if (vm.power === "Starting") throw new ProviderError("Conflict", `VM ${id} is still booting: its guest cannot shut down yet`);
  if (vm.guestHung) throw new ProviderError("Conflict", `VM ${id}'s guest is hung and cannot shut itself down`);
  powerOff(ctx.world, vm, ctx.now(), vm.power === "Running" ? "GuestShutdown" : undefined);
  ctx.syncTransition(vm);
  ctx.changed();
}

/** The VM's process dies (guest panic, emulator crash): Off at once, lastExit Crashed. */
export function crashVm(ctx: SimContext, id: string): void {
  const vm = runnableVm(ctx, id);
  if (vm.power === "Off") return;
  powerOff(ctx.world, vm, ctx.now(), "Crashed");
  ctx.syncTransition(vm);
  ctx.changed();
}

/** The guest hangs: its heartbeat stops and it does no work, but the VM stays powered on. */
export function hangGuest(ctx: SimContext, id: string): void {
  const vm = runnableVm(ctx, id);
  if (vm.power === "Off") throw new ProviderError("Conflict", `VM ${id} is off: there is no guest to hang`);
  if (vm.guestHung) return;
  vm.guestHung = true;
  if (vm.guestSince !== undefined && vm.guestStoppedAt === undefined) vm.guestStoppedAt = ctx.now();
  // A hung guest never finishes the shutdown it was asked for.
  if (vm.power === "Stopping") delete vm.transitionDueAt;
  touch(ctx.world, vm);
  ctx.syncTransition(vm);
  ctx.changed();
}

function runnableVm(ctx: SimContext, id: string): VmRecord {
  const vm = requireVm(ctx.world, id);
  const host = requireHost(ctx.world, vm.host);
  if (host.crashedAt !== undefined) throw new ProviderError("Conflict", `VM ${id}'s host ${host.name} is down`);
  return vm;
}
