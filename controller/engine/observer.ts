// The controller's view of the hosts: the latest observation, refreshed on a heartbeat-like interval,
// plus what Vireo itself just did and the provider confirmed ("assumed" VMs, as kube-scheduler's assume
// cache) so that two placement rounds never count on the same free capacity before the next observation.

import type { HypervisorProvider } from "../provider/provider.ts";
import type { HostObservation, Observation, VmObservation } from "../core/observation.ts";
import type { MigrationObservation } from "../core/migration.ts";
import type { ReplicaObservation } from "../core/replication.ts";
import type { SecondaryObservation, SwitchoverObservation } from "../core/fault-tolerance.ts";
import type { ConversionObservation } from "../core/conversion.ts";
import { jsonEqual } from "../api/equal.ts";

export interface ObservationChanges {
  /** VMs whose report changed, appeared or vanished. */
  vms: string[];
  /** Hosts whose report changed in what matters to decisions (not merely a newer heartbeat). */
  hosts: string[];
  /** Whether this is the first observation. */
  initial: boolean;
}

export class ObservationCache {
  private readonly provider: HypervisorProvider;
  private vmsById = new Map<string, VmObservation>();
  private hostsByName = new Map<string, HostObservation>();
  private vmsByHost = new Map<string, Set<string>>();
  private migrationsByVm = new Map<string, MigrationObservation>();
  private replicasByVm = new Map<string, ReplicaObservation>();
  private secondariesByVm = new Map<string, SecondaryObservation>();
  private switchoversByVm = new Map<string, SwitchoverObservation>();
  private conversionsByVm = new Map<string, ConversionObservation>();
  private unreachable: ReadonlySet<string> = new Set();
  private observedAt = 0;
  private splitBrain = 0;
  private synced = false;

  constructor(provider: HypervisorProvider) {
    this.provider = provider;
  }

  async refresh(): Promise<ObservationChanges> {
    const observation = await this.provider.observe();
    return this.apply(observation);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  at(): number {
    return this.observedAt;
  }

  splitBrainAttempts(): number {
    return this.splitBrain;
  }

  vm(id: string): VmObservation | undefined {
    return this.vmsById.get(id);
  }

  host(name: string): HostObservation | undefined {
    return this.hostsByName.get(name);
  }

  hosts(): IterableIterator<HostObservation> {
    return this.hostsByName.values();
  }

  vms(): IterableIterator<VmObservation> {
    return this.vmsById.values();
  }

  /** Migrations under way, and the last one of each VM once ended, as the hosts last reported them. */
  migrations(): MigrationObservation[] {
    return [...this.migrationsByVm.values()];
  }

  migration(vm: string): MigrationObservation | undefined {
    return this.migrationsByVm.get(vm);
  }

  /** The VM's replica, as its site last reported it. */
  replica(vm: string): ReplicaObservation | undefined {
    return this.replicasByVm.get(vm);
  }

  replicas(): IterableIterator<ReplicaObservation> {
    return this.replicasByVm.values();
  }

  /** The VM's fault-tolerant secondary, as the hosts last reported it. */
  secondary(vm: string): SecondaryObservation | undefined {
    return this.secondariesByVm.get(vm);
  }

  secondaries(): IterableIterator<SecondaryObservation> {
    return this.secondariesByVm.values();
  }

  /** The VM's last switch-over to its secondary. */
  switchover(vm: string): SwitchoverObservation | undefined {
    return this.switchoversByVm.get(vm);
  }

  switchovers(): IterableIterator<SwitchoverObservation> {
    return this.switchoversByVm.values();
  }

  /** The VM's conversion to another hypervisor type under way, or its last one. */
  conversion(vm: string): ConversionObservation | undefined {
    return this.conversionsByVm.get(vm);
  }

  conversions(): IterableIterator<ConversionObservation> {
    return this.conversionsByVm.values();
  }

  /** Datastores whose heartbeats the observer could not read at the last observation. */
  unreachableDatastores(): ReadonlySet<string> {
    return this.unreachable;
  }

  vmsOn(host: string): VmObservation[] {
    const ids = this.vmsByHost.get(host);
    if (!ids) return [];
    const result: VmObservation[] = [];
    for (const id of ids) {
      const vm = this.vmsById.get(id);
      if (vm) result.push(vm);
    }
    return result;
  }

  /**
   * A replica just asked for, with its settings, until the next observation reports it: a second round
   * before then does not ask again.
   */
  assumeReplica(vm: string, settings: ReplicaObservation["settings"]): void {
    const before = this.replicasByVm.get(vm);
    if (before && before.state !== "FailedOver" && before.settings.targetDatastore === settings.targetDatastore) {
      this.replicasByVm.set(vm, { ...before, settings: { ...settings } });
      return;
    }
    this.replicasByVm.set(vm, { vm, state: "Initializing", settings: { ...settings }, instances: [], writeRateMiBps: before?.writeRateMiBps ?? 0 });
  }

  /**
   * A secondary just asked for, until the next observation reports it: the next round counts its room and
   * does not ask again elsewhere. A secondary in lockstep elsewhere stays what protects the VM meanwhile.
   */
  assumeSecondary(vm: string, host: string, key: string, at: number): void {
    const before = this.secondariesByVm.get(vm);
    const instance = this.vmsById.get(vm);
    if (before?.host === host || before?.state === "Lockstep" || !instance) return;
    this.secondariesByVm.set(vm, { vm, key, host, primaryHost: instance.host, state: "Copying", since: at, cpu: instance.config.cpu, memoryMiB: instance.config.memoryMiB });
  }

  /** Records what the provider answered to an action, until the next observation confirms or replaces it. */
  assume(vm: VmObservation): void {
    const before = this.vmsById.get(vm.id);
    if (before && before.revision > vm.revision) return;
    this.index(vm, before);
  }

  private apply(observation: Observation): ObservationChanges {
    const changedVms: string[] = [];
    const changedHosts = new Set<string>();
    const seen = new Set<string>();
    for (const vm of observation.vms) {
      seen.add(vm.id);
      const before = this.vmsById.get(vm.id);
      if (before && before.revision === vm.revision && before.host === vm.host) continue;
      changedVms.push(vm.id);
      changedHosts.add(vm.host);
      if (before && before.host !== vm.host) changedHosts.add(before.host);
      this.index(vm, before);
    }
    for (const [id, before] of this.vmsById) {
      if (seen.has(id)) continue;
      changedVms.push(id);
      changedHosts.add(before.host);
      this.vmsById.delete(id);
      this.vmsByHost.get(before.host)?.delete(id);
    }
    const seenHosts = new Set<string>();
    for (const host of observation.hosts) {
      seenHosts.add(host.name);
      const before = this.hostsByName.get(host.name);
      if (!before || hostChanged(before, host)) changedHosts.add(host.name);
      this.hostsByName.set(host.name, host);
    }
    for (const name of this.hostsByName.keys()) {
      if (!seenHosts.has(name)) {
        this.hostsByName.delete(name);
        changedHosts.add(name);
      }
    }
    // A migration's progress moves its VM: its reconcile, its cluster's and its request's see each round.
    const migrations = new Map((observation.migrations ?? []).map((m) => [m.vm, m]));
    for (const [vm, migration] of migrations) if (!jsonEqual(this.migrationsByVm.get(vm) ?? null, migration)) changedVms.push(vm);
    for (const vm of this.migrationsByVm.keys()) if (!migrations.has(vm)) changedVms.push(vm);
    this.migrationsByVm = migrations;
    // A replica's sync moves its VM too (status: last sync, lag, RPO), and the site's clusters (recovery).
    const replicas = new Map((observation.replicas ?? []).map((r) => [r.vm, r]));
    for (const [vm, replica] of replicas) {
      const before = this.replicasByVm.get(vm);
      if (!before || replicaChanged(before, replica)) changedVms.push(vm);
    }
    for (const vm of this.replicasByVm.keys()) if (!replicas.has(vm)) changedVms.push(vm);
    this.replicasByVm = replicas;
    // A secondary's state, a switch-over and a conversion's progress move their VM (status, the cluster's next round).
    this.secondariesByVm = this.track(observation.secondaries, this.secondariesByVm, changedVms, secondaryChanged);
    this.switchoversByVm = this.track(observation.switchovers, this.switchoversByVm, changedVms, (a, b) => !jsonEqual(a, b));
    this.conversionsByVm = this.track(observation.conversions, this.conversionsByVm, changedVms, (a, b) => !jsonEqual(a, b));
    const unreachable = new Set(observation.unreachableDatastores ?? []);
    if (!jsonEqual([...this.unreachable].sort(), [...unreachable].sort())) for (const host of this.hostsByName.keys()) changedHosts.add(host);
    this.unreachable = unreachable;
    const initial = !this.synced;
    this.synced = true;
    this.observedAt = observation.at;
    this.splitBrain = observation.splitBrainAttempts;
    return { vms: changedVms, hosts: [...changedHosts], initial };
  }

  /** The reports by VM, each VM whose report changed, appeared or vanished added to `changed`. */
  private track<T extends { vm: string }>(reports: readonly T[] | undefined, before: ReadonlyMap<string, T>, changed: string[], differs: (a: T, b: T) => boolean): Map<string, T> {
    const now = new Map((reports ?? []).map((r) => [r.vm, r]));
    for (const [vm, report] of now) {
      const old = before.get(vm);
      if (!old || differs(old, report)) changed.push(vm);
    }
    for (const vm of before.keys()) if (!now.has(vm)) changed.push(vm);
    return now;
  }

  private index(vm: VmObservation, before: VmObservation | undefined): void {
    if (before && before.host !== vm.host) this.vmsByHost.get(before.host)?.delete(vm.id);
    this.vmsById.set(vm.id, vm);
    let onHost = this.vmsByHost.get(vm.host);
    if (!onHost) {
      onHost = new Set();
      this.vmsByHost.set(vm.host, onHost);
    }
    onHost.add(vm.id);
  }
}

/** What of a replica matters to decisions and status: not a sync's progress, which moves with time alone. */
function replicaChanged(a: ReplicaObservation, b: ReplicaObservation): boolean {
  return a.state !== b.state || a.reason !== b.reason || a.syncing?.startedAt !== b.syncing?.startedAt
    || a.nextSyncAt !== b.nextSyncAt || !jsonEqual(a.lastSync ?? null, b.lastSync ?? null)
    || !jsonEqual(a.settings, b.settings) || !jsonEqual(a.recovery ?? null, b.recovery ?? null);
}

/** What of a secondary matters to decisions and status: not the copy's progress or the lag, which move with time alone. */
function secondaryChanged(a: SecondaryObservation, b: SecondaryObservation): boolean {
  return a.state !== b.state || a.host !== b.host || a.key !== b.key || a.reason !== b.reason || a.primaryHost !== b.primaryHost
    || Math.round(a.slowdownPercent ?? 0) !== Math.round(b.slowdownPercent ?? 0);
}

function hostChanged(a: HostObservation, b: HostObservation): boolean {
  return a.vmCount !== b.vmCount
    || a.allocated.cpu !== b.allocated.cpu
    || a.allocated.memoryMiB !== b.allocated.memoryMiB
    || a.storagePathsUp !== b.storagePathsUp
    || !jsonEqual(a.datastores, b.datastores)
    || !jsonEqual(a.config, b.config);
}
