// Powering a VM on from its replica (replication.ts): a failover, where the replica becomes the VM and its
// registration moves to a host of the replica's site, or a test copy beside it. A failover is refused, and
// counted as a split-brain attempt, while the original may still run or write: the same disk locks that
// guard a restart guard the promotion of a replica.

import type { VmConfig, VmObservation } from "../../core/observation.ts";
import { ProviderError } from "../provider.ts";
import { refuseWhileConverting } from "./conversion.ts";
import { fenceIfDue, requireHost } from "./faults.ts";
import type { SimContext } from "./faults.ts";
import { checkHostCanRun, checkRoom } from "./hosts.ts";
import { lockHeldElsewhere, lockKeysOf, pruneDeadLocks, releaseLocks } from "./locks.ts";
import { allocatedOn, hostOf, reportVm } from "./observation.ts";
import { instanceOf, promoteReplica } from "./replication.ts";
import { powerOn, validateVmConfig } from "./vms.ts";
import { attachVm, copyVmConfig, detachVm, isPoweredOn, isReachable } from "./world.ts";
import type { HostRecord, ReplicaInstance, ReplicaRecord, VmRecord } from "./world.ts";

/** What HypervisorProvider.recoverVm is asked: on which host, as what, from which replica and instance. */
export interface RecoveryRequest {
  host: string;
  config: VmConfig;
  replicaOf: string;
  instanceAt?: number;
}

/** HypervisorProvider.recoverVm: `id` powers on on `request.host` from the replica of `request.replicaOf`. */
export function recoverVm(ctx: SimContext, id: string, request: RecoveryRequest): VmObservation {
  const { world, timings } = ctx;
  const { host: hostName, config } = request;
  validateVmConfig(id, config);
  const replica = requireReplica(ctx, request);
  const host = requireHost(world, hostName);
  const now = ctx.now();
  const existing = world.vms.get(id);
  if (existing && alreadyRecovered(existing, hostName, request.replicaOf)) return reportVm(world, existing, now, timings);
  const failover = id === request.replicaOf;
  const instance = requireInstance(replica, request);
  if (!failover && existing) throw new ProviderError("Conflict", `VM ${id} already exists on host ${existing.host}: a test copy needs an id of its own`);
  checkTarget(host, id, config, replica);
  if (failover && existing) {
    refuseWhileConverting(world, id, "fail over");
    refuseWhileOriginalMayRun(ctx, existing, hostName);
  }
  checkRoom(host, allocatedOn(world, hostName), id, config);

  if (failover) promoteReplica(world, replica, { instance, host: hostName }, now);
  const vm: VmRecord = existing ?? { id, host: hostName, config, power: "Off", since: now, guestHung: false, revision: 0 };
  if (existing) {
    // The original's locks, if any are left, lapsed (or the check above refused): they go with its registration.
    releaseLocks(world, existing);
    detachVm(world, existing);
    existing.host = hostName;
  }
  vm.config = copyVmConfig(config);
  vm.recoveredFrom = { replicaOf: request.replicaOf, instanceAt: instance.startedAt };
  attachVm(world, vm);
  powerOn(world, vm, now, timings, host.slowdown);
  pruneDeadLocks(world, now, timings);
  ctx.syncTransition(vm);
  ctx.changed();
  return reportVm(world, vm, now, timings);
}

function requireReplica(ctx: SimContext, request: RecoveryRequest): ReplicaRecord {
  if (typeof request.replicaOf !== "string" || request.replicaOf.length === 0) throw new ProviderError("Invalid", "replicaOf must name a VM");
  if (request.instanceAt !== undefined && !Number.isFinite(request.instanceAt)) throw new ProviderError("Invalid", "instanceAt must be a time in ms");
  const replica = ctx.world.replicas.get(request.replicaOf);
  if (!replica) throw new ProviderError("NotFound", `VM ${request.replicaOf} has no replica`);
  return replica;
}

/** Retrying the same recovery: `id` already runs (or boots) on the host from that replica. */
function alreadyRecovered(vm: VmRecord, hostName: string, replicaOf: string): boolean {
  return vm.host === hostName && vm.recoveredFrom?.replicaOf === replicaOf && isPoweredOn(vm.power);
}

function requireInstance(replica: ReplicaRecord, request: RecoveryRequest): ReplicaInstance {
  if (replica.recovery) {
    throw new ProviderError("Conflict", `VM ${replica.vm}'s replica was failed over to host ${replica.recovery.host} at ${new Date(replica.recovery.at).toISOString()}: it is that VM now`);
  }
  if (replica.instances.length === 0) throw new ProviderError("Conflict", `VM ${replica.vm}'s replica has no completed sync yet`);
  const instance = instanceOf(replica, request.instanceAt);
  if (!instance) throw new ProviderError("NotFound", `VM ${replica.vm}'s replica keeps no instance that began at ${request.instanceAt}`);
  return instance;
}

/** As startVm checks its host: it answers, sees the replica's datastore, can run the VM; the disks are the replica's. */
function checkTarget(host: HostRecord, id: string, config: VmConfig, replica: ReplicaRecord): void {
  if (!isReachable(host)) throw new ProviderError("Unavailable", `host ${host.name} is not responding`);
  const datastore = replica.settings.targetDatastore;
  if (!host.config.datastores.includes(datastore)) {
    throw new ProviderError("Unavailable", `host ${host.name} does not see datastore ${datastore}, which holds VM ${replica.vm}'s replica`);
  }
  const elsewhere = config.disks.find((disk) => disk.datastore !== datastore);
  if (elsewhere) throw new ProviderError("Invalid", `VM ${id}: disk ${elsewhere.name} is on datastore ${elsewhere.datastore}; the replica's disks are on ${datastore}`);
  checkHostCanRun(host, id, config);
}

/**
 * Refuses (and counts) a failover while the original may still run or write: a live lock on one of its
 * disks, or it still on on a host that answers. A storage fence that fell due has happened by now.
 */
function refuseWhileOriginalMayRun(ctx: SimContext, original: VmRecord, hostName: string): void {
  const { world, timings } = ctx;
  for (const key of lockKeysOf(original.id, original.config)) {
    const holder = world.hosts.get(world.locks.get(key)?.host ?? "");
    if (holder) fenceIfDue(ctx, holder);
  }
  const source = hostOf(world, original);
  fenceIfDue(ctx, source);
  const now = ctx.now();
  const lock = lockHeldElsewhere(world, original.id, original.config, hostName, now, timings);
  const stillOn = isPoweredOn(original.power) && isReachable(source);
  if (!lock && !stillOn) return;
  world.splitBrainAttempts += 1;
  ctx.changed();
  const reason = lock
    ? `disk ${lock.disk} on datastore ${lock.datastore} is locked by host ${lock.host}`
    : `it is still ${original.power} on host ${original.host}`;
  throw new ProviderError("LockHeld", `VM ${original.id} cannot fail over to host ${hostName}: ${reason}`);
}
