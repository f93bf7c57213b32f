// What is really true in the simulated world, whatever the hosts last reported: every host's and VM's state,
// the migrations, replicas, secondaries and what failovers and switch-overs cost. For tests and drills,
// never for the controller.

import type { SecondaryState } from "../../core/fault-tolerance.ts";
import type { VmPowerState } from "../../core/observation.ts";
import type { ReplicaState } from "../../core/replication.ts";
import { migrationsUnderWay } from "./migration-hosts.ts";
import { replicaState } from "./replication.ts";
import type { World } from "./world.ts";

/** What is really true, whatever the hosts last reported: for tests and drills, never for the controller. */
export interface GroundTruth {
  hosts: { name: string; up: boolean; isolated: boolean; partitioned: boolean; storagePathsUp: number }[];
  vms: { id: string; host: string; power: VmPowerState }[];
  /** Live migrations under way: the target holds the VM's memory too until the switch-over. */
  migrations: { vm: string; source: string; target: string }[];
  /** Every replica: its state and the start of each instance it keeps (oldest first, the latest last). */
  replicas: { vm: string; state: ReplicaState; instances: number[]; lastSyncStartedAt?: number }[];
  /**
   * Every failover from a replica: the instance it ran from, when the original last stopped writing, and
   * what the original wrote after the instance's start (lost with the failover), MiB, exact.
   */
  recoveries: { vm: string; instanceAt: number; stoppedWritingAt: number; lostMiB: number }[];
  /** Every secondary, with the one a move replaces: where it is and its state. */
  secondaries: { vm: string; host: string; state: SecondaryState }[];
  /** The last switch-over of each VM whose secondary went live; a switch-over loses nothing. */
  switchovers: { vm: string; from: string; to: string; primaryLostAt: number; at: number; lostMiB: 0 }[];
  /** Secondaries that tried to go live and lost the disk locks to a primary that still ran. */
  goLiveRefused: number;
  /** Secondaries that went live while their primary's host still ran the VM: the check that no VM ever runs twice, always 0. */
  twoPrimaries: number;
}

export function groundTruth(world: World): GroundTruth {
  return {
    hosts: [...world.hosts.values()].map((host) => ({
      name: host.name,
      up: host.crashedAt === undefined,
      isolated: host.isolatedAt !== undefined,
      partitioned: host.partitionedAt !== undefined,
      storagePathsUp: host.storagePathsUp,
    })),
    vms: [...world.vms.values()].map((vm) => ({ id: vm.id, host: vm.host, power: vm.power })),
    migrations: migrationsUnderWay(world).map((m) => ({ vm: m.vm, source: m.source, target: m.target })),
    replicas: [...world.replicas.values()].map((replica) => {
      const last = replica.instances.at(-1);
      return {
        vm: replica.vm,
        state: replicaState(world, replica).state,
        instances: replica.instances.map((instance) => instance.startedAt),
        ...(last ? { lastSyncStartedAt: last.startedAt } : {}),
      };
    }),
    recoveries: world.recoveries.map((r) => ({ vm: r.vm, instanceAt: r.instanceAt, stoppedWritingAt: r.stoppedWritingAt, lostMiB: r.lostMiB })),
    secondaries: [...world.secondaries.values()].flatMap((rec) => [
      { vm: rec.vm, host: rec.host, state: rec.state },
      ...(rec.replacing ? [{ vm: rec.vm, host: rec.replacing.host, state: "Lockstep" as const }] : []),
    ]),
    switchovers: [...world.switchovers.values()].map((s) => ({ vm: s.vm, from: s.from, to: s.to, primaryLostAt: s.primaryLostAt, at: s.at, lostMiB: 0 as const })),
    goLiveRefused: world.goLiveRefused,
    twoPrimaries: world.twoPrimaries,
  };
}
