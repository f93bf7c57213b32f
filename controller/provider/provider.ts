// The boundary between Vireo and the hypervisor hosts. The simulator implements it in-process
// (provider/sim) and over HTTP (`vireo hostsim`); a real hypervisor driver could implement it too.
//
// Every action is idempotent: asking twice for what already holds is a no-op, so an executor that crashed
// mid-plan can simply run the plan again. An action's result is not proof that it worked: the controller
// believes only the next observation.

import type { HostConfig, Observation, VmConfig, VmObservation } from "../core/observation.ts";
import type { MigrationSettings } from "../core/migration.ts";
import type { ReplicationSettings } from "../core/replication.ts";
import type { FaultToleranceSettings } from "../core/fault-tolerance.ts";
import type { ConversionSettings } from "../core/conversion.ts";

export type ProviderErrorCode = "NotFound" | "Conflict" | "Invalid" | "Unavailable" | "LockHeld" | "InsufficientResources" | "Incompatible";

/** A refusal the caller must handle; `code` says which kind. */
export class ProviderError extends Error {
  readonly code: ProviderErrorCode;
  constructor(code: ProviderErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProviderError";
    this.code = code;
  }
}

export interface HypervisorProvider {
  /** A consistent snapshot of every host and VM, as last reported. */
  observe(): Promise<Observation>;
  /** Adds a host or updates what it is made of. Idempotent. */
  registerHost(name: string, config: HostConfig): Promise<void>;
  /** Forgets a host. Refused (Conflict) while VMs are registered on it. */
  unregisterHost(name: string): Promise<void>;
  /**
   * Registers the VM on `host` with `config` (replacing an Off registration elsewhere) and powers it on.
   * A no-op when it is already starting or running there. Refused with Conflict when it is on elsewhere,
   * with LockHeld (counted as a split-brain attempt) when its disks are locked by another host, with
   * InsufficientResources when the host cannot hold it, and with Unavailable when the host is down.
   */
  startVm(id: string, host: string, config: VmConfig): Promise<VmObservation>;
  /**
   * Powers the VM off: `Shutdown` asks the guest (takes time), `PowerOff` pulls the plug. No-op when Off. With
   * `onHost`, only there: a VM the hosts have moved meanwhile (a secondary gone live) is refused with Conflict,
   * so a stop planned from an observation a moment old never stops it where it runs now.
   */
  stopVm(id: string, mode: "Shutdown" | "PowerOff", options?: { onHost?: string }): Promise<void>;
  /** Powers the VM off if needed and removes it from its host, releasing its disk locks. No-op when unknown. */
  removeVm(id: string): Promise<void>;
  /**
   * Hard-resets a powered-on VM in place (it boots again on the same host, keeping its disk locks). A second
   * call with the same `key` is a no-op, so a retried plan resets once. NotFound when unknown, Conflict when off.
   */
  resetVm(id: string, key: string): Promise<void>;
  /**
   * Moves a running VM to `target` by pre-copy live migration (core/migration.ts): the guest keeps running
   * on its source while its memory is copied, pauses for the switch-over, and runs on the target after it;
   * its disk locks pass to the target at that instant. The target holds the VM's CPU and memory for the
   * whole migration. A second call with the same `key` is a no-op, also once that migration ended (while
   * it is the VM's last). Refused with NotFound (no such VM or host), Conflict (the VM is not running, is
   * already on `target`, or migrates already under another key), Incompatible (the target's CPU vendor
   * differs, it lacks a feature the guest sees, or it does not see the VM's datastores or networks),
   * Unavailable (the source or the target does not answer, or the target has no path to the VM's disks),
   * InsufficientResources (the target cannot hold it beside what it holds already) and Invalid (an empty
   * key, settings that are not positive numbers). How it goes, and how it ends, is observed
   * (`Observation.migrations`): a failed or cancelled migration leaves the VM running on its source.
   */
  migrateVm(id: string, target: string, options: { key: string; settings: MigrationSettings }): Promise<void>;
  /**
   * Stops the VM's migration under `key` if it has not switched over yet (during the switch-over pause
   * too): it ends Cancelled and the VM runs on where it was. A no-op when that migration ended already,
   * or the VM or key is unknown.
   */
  cancelMigration(id: string, key: string): Promise<void>;
  /**
   * Replicates the VM's disks to `settings.targetDatastore` (vSphere Replication): the agent on the VM's
   * host ships, over the named link, what the guest wrote since the last sync began (the whole disk the first
   * time), on a schedule that meets the RPO where the link allows, keeping `instances` point-in-time copies
   * besides the latest. Idempotent; new settings apply from the next sync, and a new target datastore starts
   * afresh with a full sync. Replication carries on while the VM migrates and pauses while it is off or
   * its host does not answer. Observed in `Observation.replicas`. Refused with NotFound (no such VM) and
   * Invalid (settings out of range).
   */
  replicateVm(id: string, settings: ReplicationSettings): Promise<void>;
  /** Stops replicating the VM and deletes its replica and instances. A no-op when it has none. */
  stopReplication(id: string): Promise<void>;
  /**
   * Begins a sync of the VM's replica at once (after the one under way, if any): the final sync of a
   * planned migration, after the VM was shut down. A second call with the same `key` is a no-op; the sync
   * reports the key once completed. Refused with NotFound (no replica) and Conflict (it failed over).
   */
  syncReplica(id: string, key: string): Promise<void>;
  /**
   * Powers `id` on on `host` from the replica of VM `options.replicaOf`, as of the instance that began at
   * `options.instanceAt` (the latest when absent). `config.disks` name the replica's datastore.
   * - `id === replicaOf`, a failover: the replica becomes the VM (FailedOver) and the VM's registration
   *   moves to `host`. Refused with LockHeld (counted as a split-brain attempt) while the original may
   *   still run or write: a live lock on one of its disks, or it still on on a host that answers.
   * - `id !== replicaOf`, a test copy: a new VM from a snapshot of the instance; the replica and the VM
   *   carry on untouched.
   * A no-op when `id` already runs on `host` from that replica. Refused with NotFound (no replica, no such
   * host or instance), Conflict (no completed sync yet, or the replica already ran the VM elsewhere),
   * Unavailable (the host does not answer or does not see the datastore) and InsufficientResources.
   */
  recoverVm(id: string, host: string, config: VmConfig, options: { replicaOf: string; instanceAt?: number }): Promise<VmObservation>;
  /**
   * Gives the running VM a fault-tolerant secondary on `host` (vSphere FT, core/fault-tolerance.ts): a live
   * copy over the FT logging link, then lockstep. The secondary holds the VM's CPU and memory on `host`.
   * When the VM already has a secondary elsewhere, this moves it: the new one is made first and the old one
   * dropped once the new one is in lockstep. A no-op when the secondary is on `host` already (copying or in
   * lockstep). When the primary's host fails, the secondary goes live by itself within FT_GO_LIVE_MS, taking
   * the disk locks; a primary that still runs keeps them, and the secondary is dropped instead (never two
   * primaries). Observed in `Observation.secondaries` and `Observation.switchovers`. Refused with NotFound
   * (no such VM or host), Conflict (the VM is not running, or `host` is the primary's), Incompatible (as
   * migrateVm), Unavailable (a host does not answer) and InsufficientResources (`host` has no room).
   */
  protectVm(id: string, host: string, options: { key: string; settings: FaultToleranceSettings }): Promise<void>;
  /** Drops the VM's secondary; the VM runs on unprotected. A no-op when it has none. */
  unprotectVm(id: string): Promise<void>;
  /**
   * Converts the VM, which must be off, for `target`, a host of another hypervisor type (V2V): its disks
   * are rewritten at `settings.rateMiBps`, and at the end it is registered, off, on `target` with `config`
   * (the same disks and MACs, the target's devices). It cannot be powered on while it converts. A second
   * call with the same key is a no-op. Observed in `Observation.conversions`. Refused with NotFound (no such
   * VM or host), Conflict (the VM is on, or converts already under another key), Invalid (the target is of
   * the VM's own hypervisor type, a rate that is not positive), Incompatible (the target does not see the
   * VM's datastores or networks) and Unavailable (a host does not answer).
   */
  convertVm(id: string, target: string, config: VmConfig, settings: ConversionSettings): Promise<void>;
}

/**
 * Fault injection into simulated hosts, for HA drills (the `Fault` kind). Not part of HypervisorProvider:
 * only the Fault reconciler uses it; what HA decides, it decides from observations alone.
 */
export interface FaultInjector {
  crashHost(name: string): Promise<void>;
  recoverHost(name: string): Promise<void>;
  isolateHost(name: string): Promise<void>;
  healIsolation(name: string): Promise<void>;
  /**
   * Cuts the hosts off from the rest (and the controller); they still reach each other and their isolation
   * address. With `storage`, their datastores are cut off from the controller too (Observation.unreachableDatastores).
   */
  partitionHosts(names: string[], options?: { storage?: boolean }): Promise<void>;
  healPartition(names: string[]): Promise<void>;
  /** Sets how many of the host's paths reach `datastore` (every datastore it sees when none is named). */
  setStoragePathsUp(name: string, up: number, datastore?: string): Promise<void>;
  hangGuest(id: string): Promise<void>;
  healGuestHang(id: string): Promise<void>;
  /** Boots and guest shutdowns on the host take `factor` times longer. */
  slowHost(name: string, factor: number): Promise<void>;
  healSlowHost(name: string): Promise<void>;
}

/**
 * Changes an administrator can make behind Vireo's back (the simulator's console): Vireo must notice them
 * as drift and heal them. Like FaultInjector, never used by the controller's decisions.
 */
export interface OutOfBandChanges {
  /** Pulls the plug: Off at once, lastExit ManualPowerOff. */
  adminPowerOff(id: string): Promise<void>;
  /** Powers the VM on where it is registered. */
  adminPowerOn(id: string): Promise<void>;
  /** Moves the VM to another host, keeping its power state. */
  adminMove(id: string, host: string): Promise<void>;
  adminSetMemory(id: string, memoryMiB: number): Promise<void>;
  /** Connects the VM to exactly these networks. */
  adminSetNetworks(id: string, networks: string[]): Promise<void>;
  /** Creates and powers on a VM no controller asked for. */
  adminCreateVm(id: string, host: string, spec: { cpu: number; memoryMiB: number; networks?: string[] }): Promise<void>;
}

const FAULT_HOOKS = ["crashHost", "recoverHost", "isolateHost", "healIsolation", "partitionHosts", "healPartition", "setStoragePathsUp", "hangGuest", "healGuestHang", "slowHost", "healSlowHost"] as const;

/** The provider's fault hooks, when it has them (the simulator, in-process or over HTTP); undefined otherwise. */
export function faultInjectorOf(provider: object): FaultInjector | undefined {
  const hooks = provider as Record<string, unknown>;
  return FAULT_HOOKS.every((name) => typeof hooks[name] === "function") ? provider as unknown as FaultInjector : undefined;
}
