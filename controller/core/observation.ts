// What hypervisor hosts report, and what a VM is made of on one: the language the provider speaks and the
// planners read. A leaf module: the provider, the engine and the planners all import it downward.

import type { CpuVendor, Firmware, Hypervisor, IsolationResponse, NicModel, VmExitReason } from "../api/types.ts";
import type { ConversionObservation } from "./conversion.ts";
import type { SecondaryObservation, SwitchoverObservation } from "./fault-tolerance.ts";
import type { MigrationObservation } from "./migration.ts";
import type { ReplicaObservation } from "./replication.ts";

/** What a host is made of, as the driver is told when the host is registered. */
export interface HostConfig {
  hypervisor: Hypervisor;
  cpu: { cores: number; vendor: CpuVendor; model?: string; features: string[]; overcommitRatio: number };
  memoryMiB: number;
  datastores: string[];
  networks: string[];
  storagePaths: number;
  labels: Record<string, string>;
}

export type WorkloadProfile = "Idle" | "Steady" | "Diurnal" | "Bursty";

/** What a VM is made of on a host. */
export interface VmConfig {
  cpu: number;
  memoryMiB: number;
  /** The CPU features the guest sees (the cluster's baseline intersected with the host's). */
  cpuFeatures: string[];
  disks: { name: string; sizeGiB: number; datastore: string }[];
  /** Each NIC's network, MAC and device model (absent: the platform's paravirtual one). */
  nics: { network: string; macAddress: string; model?: NicModel }[];
  /** The firmware the VM boots with (absent: BIOS). */
  firmware?: Firmware;
  /**
   * What the guest does: its CPU profile and share, and how fast it dirties memory (MiB/s; absent: the
   * profile's default, core/migration.ts), which decides how hard it is to migrate live; and how fast it
   * writes to its disks (MiB/s; absent: the profile's default, core/replication.ts), what replication ships.
   */
  workload: { profile: WorkloadProfile; cpuPercent: number; dirtyRateMiBps?: number; diskWriteRateMiBps?: number };
  /**
   * What the host does with this VM when it finds itself isolated (vSphere keeps the setting in the
   * host's HA agent per VM). Absent: LeavePoweredOn.
   */
  isolationResponse?: IsolationResponse;
  /**
   * Which controller created the VM (vSphere's ManagedByInfo): Vireo sets it on every VM it starts, so a VM
   * without it that no object declares is someone else's (an orphan), reported and never deleted.
   */
  managedBy?: string;
}

/** The `managedBy` Vireo writes on the VMs it starts. */
export const MANAGED_BY = "vireo.dev";

/** How a host reaches one datastore: Ok (every path up), Degraded (some down), AllPathsDown (APD). */
export type DatastorePathState = "Ok" | "Degraded" | "AllPathsDown";

export interface DatastoreObservation {
  name: string;
  pathsUp: number;
  state: DatastorePathState;
  /** Set while no path reaches the datastore: since when (the APD timeout and VMCP count from here). */
  allPathsDownSince?: number;
}

/** One host's latest report. A host that is down stops reporting: its entry keeps the last report it sent. */
export interface HostObservation {
  name: string;
  config: HostConfig;
  /** Clock time (ms) of the last network heartbeat the host sent. */
  lastNetworkHeartbeat: number;
  /** Clock time (ms) of the last datastore heartbeat the host wrote. */
  lastDatastoreHeartbeat: number;
  /** Paths up to the host's worst-served datastore. */
  storagePathsUp: number;
  /** Per datastore the host sees, how its paths reach it. Absent from providers that cannot tell. */
  datastores?: DatastoreObservation[];
  /**
   * Set when the host has declared itself isolated (it reached neither its peers nor its isolation
   * address): the time it did. Written with its datastore heartbeat, so it is seen while the network is not.
   */
  isolatedSince?: number;
  /** How long a disk lease of this host lives after its last renewal: the fence a restart must wait for. */
  leaseExpiryMs?: number;
  /** vCPUs and MiB allocated to VMs that hold resources on this host (starting, running, stopping). */
  allocated: { cpu: number; memoryMiB: number };
  /** Physical cores busy and MiB touched by the guests right now. */
  used: { cpu: number; memoryMiB: number };
  vmCount: number;
}

export type VmPowerState = "Starting" | "Running" | "Stopping" | "Off";

/** One VM as the host it is registered on reports it. */
export interface VmObservation {
  id: string;
  host: string;
  power: VmPowerState;
  config: VmConfig;
  /** Clock time (ms) the VM last entered its current power state. */
  since: number;
  /** Clock time (ms) the current run was powered on, when it is on. */
  poweredOnAt?: number;
  /** Why the VM last went Off without being asked to (a guest shutdown, a crash), with the time. */
  lastExit?: { reason: VmExitReason; at: number };
  /** Clock time (ms) of the guest's last heartbeat (VMware Tools / qemu-guest-agent). */
  guestHeartbeat?: number;
  /** Physical cores the guest is using now. */
  cpuUsage: number;
  /** Bumped on every change the host reports, so observers can tell what changed cheaply. */
  revision: number;
}

export interface Observation {
  /** Clock time the snapshot was taken. */
  at: number;
  hosts: HostObservation[];
  vms: VmObservation[];
  /** Power-ons refused because another copy of the VM might still run (its disk lock was held). */
  splitBrainAttempts: number;
  /** Live migrations under way, and the last one of each VM once ended. Absent from providers without them. */
  migrations?: MigrationObservation[];
  /** Every VM's replica, as the replica's site reports it. Absent from providers without replication. */
  replicas?: ReplicaObservation[];
  /**
   * Datastores whose heartbeat region the observer cannot read (a site cut off, storage network included):
   * the heartbeats of the hosts that write only there are the last ones read before the cut.
   */
  unreachableDatastores?: string[];
  /** Every fault-tolerant VM's secondary. Absent from providers without fault tolerance. */
  secondaries?: SecondaryObservation[];
  /** The last switch-over of each VM whose secondary went live. */
  switchovers?: SwitchoverObservation[];
  /** Conversions to another hypervisor type under way, and the last one of each VM once ended. */
  conversions?: ConversionObservation[];
}
