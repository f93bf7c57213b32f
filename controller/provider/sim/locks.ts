// Disk locks (VMFS locks, sanlock resource leases): a powered-on VM's host holds a lock on each of its
// disks and renews it while it can reach the storage. A lock the holder stopped renewing expires after
// the lease time; until then no other host may power the VM on. That makes split-brain impossible by
// construction, and every attempt that the lock stops is counted.

import type { VmConfig } from "../../core/observation.ts";
import { lastLockRenewal } from "./hosts.ts";
import type { SimTimings } from "./timings.ts";
import type { DiskLock, VmRecord, World } from "./world.ts";

/** The lock's name on the datastore: datastore + VM id + disk name. */
export function diskLockKey(datastore: string, vmId: string, disk: string): string {
  return JSON.stringify([datastore, vmId, disk]);
}

export function lockKeysOf(vmId: string, config: Pick<VmConfig, "disks">): string[] {
  return config.disks.map((disk) => diskLockKey(disk.datastore, vmId, disk.name));
}

export function lockLastRenewal(world: World, lock: DiskLock, now: number, timings: SimTimings): number {
  if (lock.renewedUntil !== undefined) return lock.renewedUntil;
  const holder = world.hosts.get(lock.host);
  // A live holder always has a record; without one nothing renews the lock after it was taken.
  if (!holder) return lock.acquiredAt;
  return Math.max(lock.acquiredAt, lastLockRenewal(holder, now, timings, lock.datastore));
}

export function lockExpiresAt(world: World, lock: DiskLock, now: number, timings: SimTimings): number {
  return lockLastRenewal(world, lock, now, timings) + timings.lockExpiryMs;
}

export function isLockLive(world: World, lock: DiskLock, now: number, timings: SimTimings): boolean {
  return now < lockExpiresAt(world, lock, now, timings);
}

/** A live lock on one of the VM's disks held by a host other than `host`, if there is one. */
export function lockHeldElsewhere(
  world: World,
  vmId: string,
  config: Pick<VmConfig, "disks">,
  host: string,
  now: number,
  timings: SimTimings,
): DiskLock | undefined {
  for (const key of lockKeysOf(vmId, config)) {
    const lock = world.locks.get(key);
    if (lock && lock.host !== host && isLockLive(world, lock, now, timings)) return lock;
  }
  return undefined;
}

/** Takes (or takes over, once expired) the locks on every disk of a VM that is powering on. */
export function acquireLocks(world: World, vm: VmRecord, now: number): void {
  for (const disk of vm.config.disks) {
    const key = diskLockKey(disk.datastore, vm.id, disk.name);
    world.locks.set(key, { key, datastore: disk.datastore, disk: disk.name, vmId: vm.id, host: vm.host, acquiredAt: now });
  }
}

/** Releases the locks a VM's host holds on the VM's disks: the VM is off. */
export function releaseLocks(world: World, vm: VmRecord): void {
  for (const key of lockKeysOf(vm.id, vm.config)) {
    if (world.locks.get(key)?.host === vm.host) world.locks.delete(key);
  }
}

/** A crashed host renews nothing more: its locks keep the last renewal until they expire. */
export function freezeLocksOf(world: World, host: string, now: number, timings: SimTimings): void {
  for (const lock of world.locks.values()) {
    if (lock.host === host && lock.renewedUntil === undefined) lock.renewedUntil = lockLastRenewal(world, lock, now, timings);
  }
}

/**
 * A host that boots afresh holds no lock: it runs nothing. (sanlock: a host rejoining the lockspace with a
 * new generation frees the leases of its previous life.)
 */
export function releaseLocksOf(world: World, host: string): void {
  for (const [key, lock] of world.locks) {
    if (lock.host === host) world.locks.delete(key);
  }
}

/** Forgets locks that expired and whose holder can never renew them, so they do not pile up. */
export function pruneDeadLocks(world: World, now: number, timings: SimTimings): void {
  for (const [key, lock] of world.locks) {
    if (lock.renewedUntil !== undefined && !isLockLive(world, lock, now, timings)) world.locks.delete(key);
  }
}
