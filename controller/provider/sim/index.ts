// The simulated hypervisor hosts: a HypervisorProvider whose hosts heartbeat, run VMs that take time to
// boot and shut down, lock their disks and fail on request. It only answers the interface; it never
// calls into the controller. Time comes from the injected clock, so a virtual clock replays a run.

import { existsSync } from "node:fs";
import type { Clock, Timer } from "../../core/clock.ts";
import { ProviderError } from "../provider.ts";
import type { FaultInjector, OutOfBandChanges, HypervisorProvider } from "../provider.ts";
import type { HostConfig, Observation, VmConfig, VmObservation } from "../../core/observation.ts";
import type { MigrationSettings } from "../../core/migration.ts";
import type { ReplicationSettings } from "../../core/replication.ts";
import type { FaultToleranceSettings } from "../../core/fault-tolerance.ts";
import type { ConversionSettings } from "../../core/conversion.ts";
import * as faults from "./faults.ts";
import * as admin from "./admin.ts";
import type { SimContext } from "./faults.ts";
import { capacityOf, checkHostCanRun, checkRoom, isolationResponseDueAt, storageFenceDueAt, validateHostConfig } from "./hosts.ts";
import { lockExpiresAt, lockHeldElsewhere, lockKeysOf, lockLastRenewal, pruneDeadLocks, releaseLocks } from "./locks.ts";
import { migrationsUnderWay } from "./migration-hosts.ts";
import { advanceMigration, beginMigration, cancelMigration, endBrokenMigrations, forgetMigration, nextMigrationEvent } from "./migrations.ts";
import { advanceSecondary, nextSecondaryEvent, protectVm, settleSecondaries, unprotectVm } from "./fault-tolerance.ts";
import { beginConversion, endBrokenConversions, finishConversion, forgetConversion, nextConversionEnd, refuseWhileConverting } from "./conversion.ts";
import { secondaryHosts } from "./secondaries.ts";
import { allocatedOn, hostOf, observeWorld, reportVm } from "./observation.ts";
import { groundTruth } from "./ground-truth.ts";
import type { GroundTruth } from "./ground-truth.ts";
import { readStateFile, StateWriter } from "./persistence.ts";
import { recoverVm } from "./recovery.ts";
import { advanceReplication, configureReplication, nextReplicationEventAt, rebookReplicas, requestSync, settleLinks, stopReplication } from "./replication.ts";
import { parseWorld, serializeWorld, StateFileError } from "./state-file.ts";
import type { RestoredWorld } from "./state-file.ts";
import { resolveTimings } from "./timings.ts";
import type { SimTimings } from "./timings.ts";
import { bootStorage, hostLeaseLost, reshapeStorage, worstPathsUp } from "./storage.ts";
import { beginShutdown, finishBoot, isFrozen, powerOff, powerOn, validateVmConfig } from "./vms.ts";
import { attachVm, copyHostConfig, copyVmConfig, detachVm, emptyWorld, isPoweredOn, isReachable, touch } from "./world.ts";
import type { HostRecord, VmRecord, World } from "./world.ts";

export { DEFAULT_SIM_TIMINGS, resolveTimings } from "./timings.ts";
export type { SimTimings } from "./timings.ts";
export { StateFileError } from "./state-file.ts";
export type { GroundTruth } from "./ground-truth.ts";
export { cpuDemand } from "./usage.ts";

/** Migration events handled in one turn of the clock before the rest wait for the next. */
const MAX_MIGRATION_EVENTS_PER_TURN = 1000;
/** Replication events (a sync beginning or ending) handled in one turn; the rest go on at the next. */
const MAX_REPLICATION_EVENTS_PER_TURN = 10_000;
/** Fault-tolerance events (a copy's round, a go-live) and conversion ends handled in one turn. */
const MAX_FT_EVENTS_PER_TURN = 1000;

export interface SimOptions {
  clock: Clock;
  /** Seeds the guests' CPU usage profiles. A restored world keeps the seed it was created with. */
  seed: number;
  timings?: Partial<SimTimings>;
  /** Where the world is saved after every change. */
  statePath?: string;
  /** Told about every failed save; by default a process warning. `flush()` rejects while saves fail. */
  onSaveError?: (error: Error) => void;
}

/** A disk lock as the datastore shows it. */
export interface DiskLockView {
  datastore: string;
  disk: string;
  vmId: string;
  host: string;
  acquiredAt: number;
  lastRenewal: number;
  expiresAt: number;
}

const PROFILES: ReadonlySet<string> = new Set(["Idle", "Steady", "Diurnal", "Bursty"]);

/** What is wrong with a workload, naming the field, or undefined. */
function workloadProblem(workload: unknown): string | undefined {
  if (typeof workload !== "object" || workload === null) return "must be an object";
  const w = workload as Record<string, unknown>;
  if (typeof w["profile"] !== "string" || !PROFILES.has(w["profile"])) return `profile must be one of ${[...PROFILES].join(", ")}`;
  if (typeof w["cpuPercent"] !== "number" || !(w["cpuPercent"] >= 0 && w["cpuPercent"] <= 100)) return "cpuPercent must be a number from 0 to 100";
  for (const rate of ["dirtyRateMiBps", "diskWriteRateMiBps"]) {
    if (w[rate] !== undefined && (typeof w[rate] !== "number" || !Number.isFinite(w[rate]) || w[rate] < 0)) return `${rate} must be a number ≥ 0`;
  }
  return undefined;
}

export class SimulatedHosts implements HypervisorProvider, FaultInjector, OutOfBandChanges {
  readonly clock: Clock;
  readonly timings: SimTimings;
  private readonly world: World;
  private readonly ctx: SimContext;
  private readonly transitionTimers = new Map<string, Timer>();
  private readonly fenceTimers = new Map<string, Timer>();
  private readonly isolationTimers = new Map<string, Timer>();
  /**
   * One timer for the earliest event of all migrations: migrations share links, so their events must
   * happen in time order, also when a restart finds several overdue.
   */
  private migrationTimer: { due: number; timer: Timer } | undefined;
  /** One timer for the earliest replication event: syncs share links, so theirs too happen in time order. */
  private replicationTimer: { due: number; timer: Timer } | undefined;
  /** One timer for the earliest fault-tolerance event: copies share the logging links, as migrations share theirs. */
  private secondaryTimer: { due: number; timer: Timer } | undefined;
  /** One timer for the earliest end of a conversion. */
  private conversionTimer: { due: number; timer: Timer } | undefined;
  private readonly writer: StateWriter | undefined;
  private readonly changeListeners = new Set<() => void>();
  private closed = false;
  /** The clock as read by the operation under way (operationTime). */
  private operationNow: number | undefined;

  /** A new, empty world. `restored` is for `load` only. */
  constructor(options: SimOptions, restored?: RestoredWorld) {
    if (!Number.isInteger(options.seed)) throw new RangeError(`seed must be an integer, got ${options.seed}`);
    if (!restored && options.statePath !== undefined && existsSync(options.statePath)) {
      throw new StateFileError(options.statePath, "already exists; restore it with SimulatedHosts.load rather than replace it");
    }
    this.clock = options.clock;
    this.timings = restored?.timings ?? resolveTimings(options.timings);
    this.world = restored?.world ?? emptyWorld(options.seed);
    this.ctx = {
      world: this.world,
      timings: this.timings,
      now: () => this.operationTime(),
      syncTransition: (vm) => this.syncTransition(vm),
      syncFence: (host) => this.syncFence(host),
      syncIsolation: (host) => this.syncIsolation(host),
      changed: () => this.changed(),
    };
    this.writer = options.statePath === undefined
      ? undefined
      : new StateWriter(options.statePath, () => serializeWorld(this.world, this.timings, this.clock.now()), options.onSaveError);
    if (restored) this.rearmTimers();
  }

  /**
   * The world saved at `statePath`, with its VMs where they were and the transitions under way completing
   * at their original times (or at once, when those have passed). A new, empty world when there is no file
   * yet, seeded with `seed` (default 1). The file's seed and timings win over `seed` and the defaults;
   * `timings` given here override both.
   */
  static async load(options: Omit<SimOptions, "seed"> & { seed?: number; statePath: string }): Promise<SimulatedHosts> {
    const text = await readStateFile(options.statePath);
    if (text === undefined) {
      const seed = options.seed ?? 1;
      return new SimulatedHosts({ ...options, seed }, { world: emptyWorld(seed), timings: resolveTimings(options.timings) });
    }
    const restored = parseWorld(options.statePath, text);
    const overrides = Object.entries(options.timings ?? {}).filter(([, value]) => value !== undefined);
    if (overrides.length > 0) restored.timings = resolveTimings({ ...restored.timings, ...Object.fromEntries(overrides) });
    return new SimulatedHosts({ ...options, seed: restored.world.seed }, restored);
  }

  get seed(): number {
    return this.world.seed;
  }

  async observe(): Promise<Observation> {
    return observeWorld(this.world, this.clock.now(), this.timings);
  }

  /** One VM as its host last reported it, or undefined when no host has it. */
  observeVm(id: string): VmObservation | undefined {
    const vm = this.world.vms.get(id);
    return vm && reportVm(this.world, vm, this.clock.now(), this.timings);
  }

  /**
   * The world's revision: it rises with every change (never with time alone) and is saved with the
   * world, so it keeps rising across restarts. Remote observers long-poll on it (`vireo hostsim`).
   */
  revision(): number {
    return this.world.revision;
  }

  /** Calls `listener` after every change to the world, synchronously; it must not throw. Returns its removal. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => { this.changeListeners.delete(listener); };
  }

  /** Power-ons refused so far because another copy of the VM might still run. */
  splitBrainAttempts(): number {
    return this.world.splitBrainAttempts;
  }

  async registerHost(name: string, config: HostConfig): Promise<void> {
    this.assertOpen();
    validateHostConfig(name, config);
    const existing = this.world.hosts.get(name);
    if (!existing) {
      const now = this.clock.now();
      const host: HostRecord = {
        name,
        config: copyHostConfig(config),
        bootedAt: now,
        networkSince: now,
        storagePathsUp: config.storagePaths,
        storageSince: now,
      };
      bootStorage(host, now);
      if (hostLeaseLost(host)) host.storageLostAt = now;
      this.world.hosts.set(name, host);
      this.changed();
      return;
    }
    if (JSON.stringify(copyHostConfig(config)) === JSON.stringify(existing.config)) return;
    const allocated = allocatedOn(this.world, name);
    const capacity = capacityOf(config);
    if (allocated.memoryMiB > capacity.memoryMiB || allocated.cpu > capacity.cpu) {
      throw new ProviderError(
        "Conflict",
        `host ${name} runs VMs with ${allocated.cpu} vCPUs and ${allocated.memoryMiB} MiB; the new description holds only ${capacity.cpu} vCPUs and ${capacity.memoryMiB} MiB`,
      );
    }
    // A path fault survives a change of description; a datastore with all paths up keeps them all up.
    const previousPaths = existing.config.storagePaths;
    existing.config = copyHostConfig(config);
    if (existing.storageLostAt !== undefined) faults.fenceIfDue(this.ctx, existing);
    reshapeStorage(existing, previousPaths, this.clock.now());
    existing.storagePathsUp = worstPathsUp(existing);
    faults.syncHostLease(this.ctx, existing);
    this.changed();
  }

  async unregisterHost(name: string): Promise<void> {
    this.assertOpen();
    if (!this.world.hosts.has(name)) return;
    const registered = this.world.vmsByHost.get(name)?.size ?? 0;
    if (registered > 0) throw new ProviderError("Conflict", `host ${name} still has ${registered} VM(s) registered`);
    const incoming = migrationsUnderWay(this.world).find((m) => m.target === name);
    if (incoming) throw new ProviderError("Conflict", `host ${name} is the target of VM ${incoming.vm}'s migration`);
    const secondary = [...this.world.secondaries.values()].find((rec) => secondaryHosts(rec).includes(name));
    if (secondary) throw new ProviderError("Conflict", `host ${name} runs VM ${secondary.vm}'s secondary`);
    const conversion = [...this.world.conversions.values()].find((c) => c.phase === "Converting" && c.target === name);
    if (conversion) throw new ProviderError("Conflict", `host ${name} is the target of VM ${conversion.vm}'s conversion`);
    this.fenceTimers.get(name)?.cancel();
    this.fenceTimers.delete(name);
    this.isolationTimers.get(name)?.cancel();
    this.isolationTimers.delete(name);
    this.world.hosts.delete(name);
    pruneDeadLocks(this.world, this.clock.now(), this.timings);
    this.changed();
  }

  async startVm(id: string, hostName: string, config: VmConfig): Promise<VmObservation> {
    this.assertOpen();
    validateVmConfig(id, config);
    const { world, timings } = this;
    const host = faults.requireHost(world, hostName);
    if (!isReachable(host)) throw new ProviderError("Unavailable", `host ${hostName} is not responding`);
    const now = this.clock.now();
    refuseWhileConverting(world, id, "be powered on");
    const existing = world.vms.get(id);
    if (existing?.host === hostName) {
      if (existing.power === "Starting" || existing.power === "Running") return reportVm(world, existing, now, timings);
      if (existing.power === "Stopping") {
        throw new ProviderError("Conflict", `VM ${id} is shutting down on host ${hostName}; it can be powered on once it is Off`);
      }
    } else if (existing && isPoweredOn(existing.power) && isReachable(hostOf(world, existing))) {
      throw new ProviderError("Conflict", `VM ${id} is ${existing.power} on host ${existing.host}`);
    }
    checkHostCanRun(host, id, config);
    this.refuseSplitBrain(id, hostName, config, existing, now);
    checkRoom(host, allocatedOn(world, hostName), id, config);

    const vm: VmRecord = existing ?? { id, host: hostName, config, power: "Off", since: now, guestHung: false, revision: 0 };
    if (existing && existing.host !== hostName) {
      detachVm(world, existing);
      existing.host = hostName;
    }
    vm.config = copyVmConfig(config);
    attachVm(world, vm);
    powerOn(world, vm, now, timings, host.slowdown);
    this.syncTransition(vm);
    this.changed();
    return reportVm(world, vm, now, timings);
  }

  async migrateVm(id: string, target: string, options: { key: string; settings: MigrationSettings }): Promise<void> {
    this.assertOpen();
    if (beginMigration(this.ctx, id, target, options)) this.changed();
  }

  async cancelMigration(id: string, key: string): Promise<void> {
    this.assertOpen();
    if (cancelMigration(this.ctx, id, key)) this.changed();
  }

  async replicateVm(id: string, settings: ReplicationSettings): Promise<void> {
    this.assertOpen();
    if (configureReplication(this.world, id, settings, this.clock.now())) this.changed();
  }

  async stopReplication(id: string): Promise<void> {
    this.assertOpen();
    if (stopReplication(this.world, id, this.clock.now())) this.changed();
  }

  async syncReplica(id: string, key: string): Promise<void> {
    this.assertOpen();
    if (requestSync(this.world, id, key, this.clock.now())) this.changed();
  }

  async recoverVm(id: string, host: string, config: VmConfig, options: { replicaOf: string; instanceAt?: number }): Promise<VmObservation> {
    this.assertOpen();
    return recoverVm(this.ctx, id, { ...options, host, config });
  }

  async protectVm(id: string, host: string, options: { key: string; settings: FaultToleranceSettings }): Promise<void> {
    this.assertOpen();
    if (protectVm(this.ctx, id, host, options)) this.changed();
  }

  async unprotectVm(id: string): Promise<void> {
    this.assertOpen();
    if (unprotectVm(this.ctx, id)) this.changed();
  }

  async convertVm(id: string, target: string, config: VmConfig, settings: ConversionSettings): Promise<void> {
    this.assertOpen();
    if (beginConversion(this.ctx, id, target, { config, settings })) this.changed();
  }

  async resetVm(id: string, key: string): Promise<void> {
    this.assertOpen();
    const vm = faults.requireVm(this.world, id);
    if (vm.lastResetKey === key) return;
    const host = hostOf(this.world, vm);
    if (!isReachable(host)) throw new ProviderError("Unavailable", `VM ${id}'s host ${host.name} is not responding`);
    if (!isPoweredOn(vm.power)) throw new ProviderError("Conflict", `VM ${id} is off: there is nothing to reset`);
    if (isFrozen(vm, host)) throw new ProviderError("Unavailable", `VM ${id}'s storage is unreachable from host ${host.name} (all paths down): it cannot boot there`);
    vm.lastResetKey = key;
    // A hard reset: the guest boots again on the same host, which keeps (re-takes) its disk locks.
    powerOn(this.world, vm, this.clock.now(), this.timings, host.slowdown);
    this.syncTransition(vm);
    this.changed();
  }

  async stopVm(id: string, mode: "Shutdown" | "PowerOff", options: { onHost?: string } = {}): Promise<void> {
    this.assertOpen();
    if (mode !== "Shutdown" && mode !== "PowerOff") throw new ProviderError("Invalid", `stop mode must be Shutdown or PowerOff, got ${String(mode)}`);
    const vm = this.world.vms.get(id);
    if (!vm) return;
    if (options.onHost !== undefined && vm.host !== options.onHost) throw new ProviderError("Conflict", `VM ${id} runs on host ${vm.host} now, not on ${options.onHost}`);
    const now = this.clock.now();
    const host = hostOf(this.world, vm);
    if (!isReachable(host)) {
      if (reportVm(this.world, vm, now, this.timings).power === "Off") return;
      throw new ProviderError("Unavailable", `VM ${id}'s host ${host.name} is not responding`);
    }
    if (vm.power === "Off") return;
    // A VM powered off while its storage is in APD stopped because of it (VM component protection's
    // terminate): the host says so, as vSphere logs the VMCP termination.
    if (mode === "PowerOff") powerOff(this.world, vm, now, isFrozen(vm, host) ? "StorageFailure" : undefined);
    else if (vm.power === "Stopping") return;
    else beginShutdown(this.world, vm, now, this.timings, host.slowdown);
    this.syncTransition(vm);
    this.changed();
  }

  async removeVm(id: string): Promise<void> {
    this.assertOpen();
    const vm = this.world.vms.get(id);
    if (!vm) return;
    const host = hostOf(this.world, vm);
    if (!isReachable(host)) {
      throw new ProviderError("Unavailable", `VM ${id}'s host ${host.name} is not responding: it can neither power the VM off nor release its disks`);
    }
    if (isPoweredOn(vm.power)) powerOff(this.world, vm, this.clock.now());
    releaseLocks(this.world, vm);
    this.transitionTimers.get(id)?.cancel();
    this.transitionTimers.delete(id);
    detachVm(this.world, vm);
    forgetMigration(this.world, id, this.clock.now());
    forgetConversion(this.world, id);
    this.changed();
  }

  // ------------------------------------------------------------ simulator-only: faults and inspection

  async crashHost(name: string): Promise<void> {
    this.assertOpen();
    faults.crashHost(this.ctx, name);
  }

  async recoverHost(name: string): Promise<void> {
    this.assertOpen();
    faults.recoverHost(this.ctx, name);
  }

  async isolateHost(name: string): Promise<void> {
    this.assertOpen();
    faults.isolateHost(this.ctx, name);
  }

  async healIsolation(name: string): Promise<void> {
    this.assertOpen();
    faults.healIsolation(this.ctx, name);
  }

  async partitionHosts(names: string[], options: { storage?: boolean } = {}): Promise<void> {
    this.assertOpen();
    faults.partitionHosts(this.ctx, names, options.storage === true);
  }

  async healPartition(names: string[]): Promise<void> {
    this.assertOpen();
    faults.healPartition(this.ctx, names);
  }

  async setStoragePathsUp(name: string, up: number, datastore?: string): Promise<void> {
    this.assertOpen();
    faults.setStoragePathsUp(this.ctx, name, up, datastore);
  }

  async slowHost(name: string, factor: number): Promise<void> {
    this.assertOpen();
    faults.slowHost(this.ctx, name, factor);
  }

  async healSlowHost(name: string): Promise<void> {
    this.assertOpen();
    faults.healSlowHost(this.ctx, name);
  }

  async guestShutdown(id: string): Promise<void> {
    this.assertOpen();
    faults.guestShutdown(this.ctx, id);
  }

  async crashVm(id: string): Promise<void> {
    this.assertOpen();
    faults.crashVm(this.ctx, id);
  }

  async hangGuest(id: string): Promise<void> {
    this.assertOpen();
    faults.hangGuest(this.ctx, id);
  }

  async healGuestHang(id: string): Promise<void> {
    this.assertOpen();
    faults.healGuestHang(this.ctx, id);
  }

  // ------------------------------------------------------------ simulator-only: an administrator's changes

  async adminPowerOff(id: string): Promise<void> {
    this.assertOpen();
    admin.adminPowerOff(this.ctx, id);
  }

  async adminPowerOn(id: string): Promise<void> {
    this.assertOpen();
    admin.adminPowerOn(this.ctx, id);
  }

  async adminMove(id: string, host: string): Promise<void> {
    this.assertOpen();
    admin.adminMove(this.ctx, id, host);
  }

  /**
   * The guest's own load changes (a daily peak, a burst): its CPU use, memory dirtying and disk writes follow
   * the new workload from now. The writes up to now are booked at the old rate first.
   */
  async setGuestWorkload(id: string, workload: VmConfig["workload"]): Promise<void> {
    this.assertOpen();
    const problem = workloadProblem(workload);
    if (problem) throw new ProviderError("Invalid", `workload of VM ${id}: ${problem}`);
    const vm = faults.requireVm(this.world, id);
    rebookReplicas(this.world, this.operationTime());
    vm.config = { ...copyVmConfig(vm.config), workload: { ...workload } };
    touch(this.world, vm);
    this.changed();
  }

  async adminSetMemory(id: string, memoryMiB: number): Promise<void> {
    this.assertOpen();
    admin.adminSetMemory(this.ctx, id, memoryMiB);
  }

  async adminSetNetworks(id: string, networks: string[]): Promise<void> {
    this.assertOpen();
    admin.adminSetNetworks(this.ctx, id, networks);
  }

  async adminCreateVm(id: string, host: string, spec: admin.ManualVmSpec): Promise<void> {
    this.assertOpen();
    admin.adminCreate(this.ctx, id, host, spec);
  }

  /** Every disk lock on the datastores, live or expired-but-not-yet-taken-over. */
  diskLocks(): DiskLockView[] {
    const now = this.clock.now();
    return [...this.world.locks.values()].map((lock) => ({
      datastore: lock.datastore,
      disk: lock.disk,
      vmId: lock.vmId,
      host: lock.host,
      acquiredAt: lock.acquiredAt,
      lastRenewal: lockLastRenewal(this.world, lock, now, this.timings),
      expiresAt: lockExpiresAt(this.world, lock, now, this.timings),
    }));
  }

  groundTruth(): GroundTruth {
    return groundTruth(this.world);
  }

  /** Resolves once the latest state is on disk (at once without a state file); rejects on a failed save. */
  async flush(): Promise<void> {
    await this.writer?.flush();
  }

  /** Stops every timer, refuses further actions, and waits for the last save. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.transitionTimers.values()) timer.cancel();
    for (const timer of this.fenceTimers.values()) timer.cancel();
    for (const timer of this.isolationTimers.values()) timer.cancel();
    this.migrationTimer?.timer.cancel();
    this.migrationTimer = undefined;
    this.replicationTimer?.timer.cancel();
    this.replicationTimer = undefined;
    this.secondaryTimer?.timer.cancel();
    this.secondaryTimer = undefined;
    this.conversionTimer?.timer.cancel();
    this.conversionTimer = undefined;
    this.transitionTimers.clear();
    this.fenceTimers.clear();
    this.isolationTimers.clear();
    await this.flush();
  }

  // ------------------------------------------------------------ internals

  /**
   * Refuses (and counts) a power-on while another copy of the VM may still run: a live lock on one of its
   * disks held by another host, or — for a VM without disks, which no lock protects — the copy itself.
   */
  private refuseSplitBrain(id: string, hostName: string, config: VmConfig, existing: VmRecord | undefined, now: number): void {
    const { world, timings } = this;
    // A storage fence that fell due has happened, whether or not its timer has fired yet.
    for (const key of lockKeysOf(id, config)) {
      const holder = world.hosts.get(world.locks.get(key)?.host ?? "");
      if (holder) faults.fenceIfDue(this.ctx, holder);
    }
    if (existing && existing.host !== hostName) faults.fenceIfDue(this.ctx, hostOf(world, existing));
    const lock = lockHeldElsewhere(world, id, config, hostName, now, timings);
    const stillRuns = existing !== undefined && existing.host !== hostName && isPoweredOn(existing.power);
    if (!lock && !stillRuns) return;
    world.splitBrainAttempts += 1;
    this.changed();
    const reason = lock
      ? `disk ${lock.disk} on datastore ${lock.datastore} is locked by host ${lock.host}`
      : `it still runs on host ${existing?.host}`;
    throw new ProviderError("LockHeld", `VM ${id} cannot power on on host ${hostName}: ${reason}`);
  }

  private syncTransition(vm: VmRecord): void {
    this.transitionTimers.get(vm.id)?.cancel();
    this.transitionTimers.delete(vm.id);
    const due = vm.transitionDueAt;
    if (due === undefined || this.closed) return;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.completeTransition(vm.id, due));
    this.transitionTimers.set(vm.id, timer);
  }

  private completeTransition(id: string, due: number): void {
    this.transitionTimers.delete(id);
    const vm = this.world.vms.get(id);
    // A timer that outlived its transition (the VM was stopped or removed meanwhile) has nothing to do.
    if (!vm || vm.transitionDueAt !== due) return;
    const now = this.clock.now();
    if (vm.power === "Starting") finishBoot(this.world, vm, now);
    else if (vm.power === "Stopping") powerOff(this.world, vm, now, vm.stopCause);
    this.changed();
  }

  private syncFence(host: HostRecord): void {
    this.fenceTimers.get(host.name)?.cancel();
    this.fenceTimers.delete(host.name);
    const due = storageFenceDueAt(host, this.timings);
    if (due === undefined || host.crashedAt !== undefined || this.closed) return;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => {
      this.fenceTimers.delete(host.name);
      faults.fenceStorageLoss(this.ctx, host);
    });
    this.fenceTimers.set(host.name, timer);
  }

  private syncIsolation(host: HostRecord): void {
    this.isolationTimers.get(host.name)?.cancel();
    this.isolationTimers.delete(host.name);
    const due = isolationResponseDueAt(host, this.timings);
    if (due === undefined || host.crashedAt !== undefined || this.closed) return;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => {
      this.isolationTimers.delete(host.name);
      faults.applyIsolationResponse(this.ctx, host);
    });
    this.isolationTimers.set(host.name, timer);
  }

  /** Arms the migration timer for the earliest event of any migration under way, or cancels it. */
  private syncMigrationTimer(): void {
    const next = this.closed ? undefined : nextMigrationEvent(this.world);
    if (next?.due === this.migrationTimer?.due) return;
    this.migrationTimer?.timer.cancel();
    this.migrationTimer = undefined;
    if (!next) return;
    const due = next.due;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.migrationsDue(due));
    this.migrationTimer = { due, timer };
  }

  /**
   * Every migration event due by now (or by `due`, should the timer fire early) happens, one after the
   * other in time order, each at the time it was due: the model stays exact however late the timer
   * fires, and a restart that finds events overdue replays them to the same end.
   */
  private migrationsDue(due: number): void {
    if (this.migrationTimer?.due !== due) return;
    this.migrationTimer = undefined;
    const until = Math.max(due, this.clock.now());
    // Each event moves its migration on (maxRounds bounds the rounds at one instant); the cap only keeps
    // one timer's work short: what is left goes on at the next turn.
    for (let events = 0; events < MAX_MIGRATION_EVENTS_PER_TURN; events++) {
      const next = nextMigrationEvent(this.world);
      if (!next || next.due > until) break;
      advanceMigration(this.ctx, next.id, next.due);
      this.changed();
    }
    this.syncMigrationTimer();
  }

  /** Arms the fault-tolerance timer for the earliest event of any secondary, or cancels it. */
  private syncSecondaryTimer(): void {
    const next = this.closed ? undefined : nextSecondaryEvent(this.world);
    if (next?.due === this.secondaryTimer?.due) return;
    this.secondaryTimer?.timer.cancel();
    this.secondaryTimer = undefined;
    if (!next) return;
    const due = next.due;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.secondariesDue(due));
    this.secondaryTimer = { due, timer };
  }

  /** Every fault-tolerance event due by now happens, each at its own time, in time order, as migrations' do. */
  private secondariesDue(due: number): void {
    if (this.secondaryTimer?.due !== due) return;
    this.secondaryTimer = undefined;
    const until = Math.max(due, this.clock.now());
    for (let events = 0; events < MAX_FT_EVENTS_PER_TURN; events++) {
      const next = nextSecondaryEvent(this.world);
      if (!next || next.due > until) break;
      advanceSecondary(this.ctx, next.id, next.due);
      this.changed();
    }
    this.syncSecondaryTimer();
  }

  private syncConversionTimer(): void {
    const next = this.closed ? undefined : nextConversionEnd(this.world);
    if (next?.due === this.conversionTimer?.due) return;
    this.conversionTimer?.timer.cancel();
    this.conversionTimer = undefined;
    if (!next) return;
    const due = next.due;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.conversionsDue(due));
    this.conversionTimer = { due, timer };
  }

  /** Every conversion whose time is up ends, each at its own time. */
  private conversionsDue(due: number): void {
    if (this.conversionTimer?.due !== due) return;
    this.conversionTimer = undefined;
    const until = Math.max(due, this.clock.now());
    for (let events = 0; events < MAX_FT_EVENTS_PER_TURN; events++) {
      const next = nextConversionEnd(this.world);
      if (!next || next.due > until) break;
      finishConversion(this.world, next.id, next.due);
      this.changed();
    }
    this.syncConversionTimer();
  }

  /** Arms the replication timer for the earliest replication event, or cancels it. */
  private syncReplicationTimer(): void {
    const due = this.closed ? undefined : nextReplicationEventAt(this.world);
    if (due === this.replicationTimer?.due) return;
    this.replicationTimer?.timer.cancel();
    this.replicationTimer = undefined;
    if (due === undefined) return;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.replicationsDue(due));
    this.replicationTimer = { due, timer };
  }

  /** Every replication event due by now happens, each at its own time and with its own revision, as migrations' do. */
  private replicationsDue(due: number): void {
    if (this.replicationTimer?.due !== due) return;
    this.replicationTimer = undefined;
    const until = Math.max(due, this.clock.now());
    for (let events = 0; events < MAX_REPLICATION_EVENTS_PER_TURN && advanceReplication(this.world, until); events++) this.published();
    settleLinks(this.world);
    this.syncReplicationTimer();
  }

  /** Replication events due by `until` (before it, unless `inclusive`), in time order; how many happened. */
  private runReplicationEvents(until: number, inclusive: boolean): number {
    let events = 0;
    while (events < MAX_REPLICATION_EVENTS_PER_TURN && advanceReplication(this.world, until, inclusive)) events += 1;
    settleLinks(this.world);
    return events;
  }

  private rearmTimers(): void {
    for (const vm of this.world.vms.values()) this.syncTransition(vm);
    for (const host of this.world.hosts.values()) {
      this.syncFence(host);
      this.syncIsolation(host);
    }
    this.syncMigrationTimer();
    this.syncSecondaryTimer();
    this.syncConversionTimer();
    // Syncs that fell due while nothing ran happen now, each at its own time, before anything else can
    // change the world: the writes they ship were booked as the world was saved.
    if (this.runReplicationEvents(this.clock.now(), true) > 0) this.published();
    this.syncReplicationTimer();
  }

  /**
   * The time of the operation under way: the clock read once, so that everything one change does (a crash,
   * and the writes booked up to it) happens at one instant, however a real clock moves meanwhile.
   */
  private operationTime(): number {
    if (this.operationNow === undefined) {
      this.operationNow = this.clock.now();
      queueMicrotask(() => { this.operationNow = undefined; });
    }
    return this.operationNow;
  }

  private changed(): void {
    // Whatever changed may have broken a migration (a host down, the VM stopped): it ends before anyone looks.
    endBrokenMigrations(this.ctx);
    this.syncMigrationTimer();
    // So does a secondary or a conversion: a copy that lost its link, a go-live that fell due, a source that failed.
    settleSecondaries(this.ctx);
    this.syncSecondaryTimer();
    endBrokenConversions(this.world, this.operationTime());
    this.syncConversionTimer();
    // Replication events overdue (a late timer) happen first, at their own times, as the world was; then
    // every replica books what its VM wrote up to the change, and what is due at once (a first sync, one
    // asked for, one the change made possible) begins now.
    const now = this.operationTime();
    this.runReplicationEvents(now, false);
    rebookReplicas(this.world, now);
    this.runReplicationEvents(now, true);
    this.syncReplicationTimer();
    this.published();
  }

  /** The world moved on: a new revision, saved and told to listeners. */
  private published(): void {
    // A change that touches no VM (a host crashing, a split-brain attempt) still moves the world's
    // revision; VM revisions stay unique, as they are handed out from the same counter.
    this.world.revision += 1;
    this.writer?.request();
    for (const listener of this.changeListeners) listener();
  }

  private assertOpen(): void {
    if (this.closed) throw new ProviderError("Unavailable", "the simulated hosts have been closed");
  }
}
