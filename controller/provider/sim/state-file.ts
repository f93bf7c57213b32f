// The simulated world on disk: one JSON document. Reading it checks every record, so a damaged file is
// an error naming the file and the record, never a half-restored world.

import type { MigrationPhase } from "../../core/migration.ts";
import { migrationSettingsProblem } from "../../core/migration.ts";
import { conversionSettingsProblem } from "./conversion.ts";
import { faultToleranceSettingsProblem } from "./fault-tolerance.ts";
import type { VmPowerState } from "../../core/observation.ts";
import { validateHostConfig } from "./hosts.ts";
import { indexReplicas, replicationSettingsProblem } from "./replication.ts";
import type { SimTimings } from "./timings.ts";
import { resolveTimings } from "./timings.ts";
import { validateVmConfig } from "./vms.ts";
import { attachVm, emptyWorld } from "./world.ts";
import type {
  ConversionRecord, DiskLock, HostRecord, MigrationRecord, RecoveryRecord, ReplicaRecord, ReplicationLink, SecondaryRecord, SwitchoverRecord, VmRecord, World,
} from "./world.ts";

export const STATE_FORMAT = "vireo-simulated-hosts";
/**
 * 2 added live migrations, 3 replication (replicas, links, recoveries), 4 fault tolerance (secondaries,
 * switch-overs) and conversions; an older file is a world without them and loads as it is.
 */
export const STATE_VERSION = 4;
const READABLE_VERSIONS: readonly unknown[] = [1, 2, 3, 4];

interface WorldFile {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  savedAt: number;
  seed: number;
  timings: SimTimings;
  splitBrainAttempts: number;
  revision: number;
  hosts: HostRecord[];
  vms: VmRecord[];
  locks: DiskLock[];
  migrations: MigrationRecord[];
  replicas: ReplicaRecord[];
  links: ReplicationLink[];
  recoveries: RecoveryRecord[];
  secondaries: SecondaryRecord[];
  switchovers: SwitchoverRecord[];
  conversions: ConversionRecord[];
  goLiveRefused: number;
  twoPrimaries: number;
}

/** The state file cannot be read back into a world. */
export class StateFileError extends Error {
  readonly path: string;
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`simulator state file ${path}: ${problem}`, options);
    this.name = "StateFileError";
    this.path = path;
  }
}

export function serializeWorld(world: World, timings: SimTimings, savedAt: number): string {
  const file: WorldFile = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    savedAt,
    seed: world.seed,
    timings,
    splitBrainAttempts: world.splitBrainAttempts,
    revision: world.revision,
    hosts: [...world.hosts.values()],
    vms: [...world.vms.values()],
    locks: [...world.locks.values()],
    migrations: [...world.migrations.values()],
    replicas: [...world.replicas.values()],
    links: [...world.links.values()],
    recoveries: world.recoveries,
    secondaries: [...world.secondaries.values()],
    switchovers: [...world.switchovers.values()],
    conversions: [...world.conversions.values()],
    goLiveRefused: world.goLiveRefused,
    twoPrimaries: world.twoPrimaries,
  };
  return `${JSON.stringify(file)}\n`;
}

export interface RestoredWorld {
  world: World;
  timings: SimTimings;
}

export function parseWorld(path: string, text: string): RestoredWorld {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(path, "is not valid JSON", { cause: error });
  }
  try {
    return restore(data);
  } catch (error) {
    if (error instanceof RecordError) throw new StateFileError(path, error.message, { cause: error.cause });
    throw error;
  }
}

/** A record of the file that does not hold together; turned into a StateFileError naming the file. */
class RecordError extends Error {}

type Fields = Record<string, unknown>;

function restore(data: unknown): RestoredWorld {
  const file = object(data, "the document");
  if (file.format !== STATE_FORMAT) throw new RecordError(`format is ${JSON.stringify(file.format)}, expected ${STATE_FORMAT}`);
  if (!READABLE_VERSIONS.includes(file.version)) throw new RecordError(`version ${JSON.stringify(file.version)} is not supported (expected ${READABLE_VERSIONS.join(" or ")})`);
  const world = emptyWorld(number(file, "seed", "the document"));
  world.splitBrainAttempts = number(file, "splitBrainAttempts", "the document");
  world.revision = number(file, "revision", "the document");
  let timings: SimTimings;
  try {
    timings = resolveTimings(object(file.timings, "timings") as Partial<SimTimings>);
  } catch (error) {
    throw new RecordError(`timings: ${(error as Error).message}`, { cause: error });
  }
  list(file, "hosts").forEach((entry, i) => {
    const host = hostRecord(entry, `hosts[${i}]`);
    if (world.hosts.has(host.name)) throw new RecordError(`hosts[${i}]: host ${host.name} appears twice`);
    world.hosts.set(host.name, host);
  });
  list(file, "vms").forEach((entry, i) => {
    const vm = vmRecord(entry, `vms[${i}]`);
    if (world.vms.has(vm.id)) throw new RecordError(`vms[${i}]: VM ${vm.id} appears twice`);
    const host = world.hosts.get(vm.host);
    if (!host) throw new RecordError(`vms[${i}]: VM ${vm.id} is on unknown host ${vm.host}`);
    if (host.crashedAt !== undefined && vm.lastReport === undefined) {
      throw new RecordError(`vms[${i}]: VM ${vm.id} is on crashed host ${vm.host} but has no last report`);
    }
    attachVm(world, vm);
  });
  list(file, "locks").forEach((entry, i) => {
    const lock = lockRecord(entry, `locks[${i}]`);
    world.locks.set(lock.key, lock);
  });
  if (file.migrations !== undefined || file.version !== 1) {
    list(file, "migrations").forEach((entry, i) => {
      const m = migrationRecord(entry, `migrations[${i}]`, world);
      if (world.migrations.has(m.vm)) throw new RecordError(`migrations[${i}]: VM ${m.vm} has two migrations`);
      world.migrations.set(m.vm, m);
    });
  }
  if (file.version === 3 || file.version === 4) restoreReplication(file, world);
  if (file.version === 4) restoreFaultTolerance(file, world);
  return { world, timings };
}

function hostRecord(entry: unknown, where: string): HostRecord {
  const fields = object(entry, where);
  const host = fields as unknown as HostRecord;
  string(fields, "name", where);
  object(fields.config, `${where}.config`);
  list(object((fields.config as Fields).cpu, `${where}.config.cpu`), "features", `${where}.config.cpu`);
  for (const name of ["datastores", "networks"]) list(fields.config as Fields, name, `${where}.config`);
  object((fields.config as Fields).labels, `${where}.config.labels`);
  checked(where, () => validateHostConfig(host.name, host.config));
  for (const name of ["bootedAt", "networkSince", "storagePathsUp", "storageSince"]) number(fields, name, where);
  for (const name of ["isolatedAt", "partitionedAt", "storageCutAt", "storageLostAt", "crashedAt"]) optionalNumber(fields, name, where);
  if (host.crashedAt !== undefined) object(fields.lastReport, `${where}.lastReport`);
  if (fields.datastorePaths !== undefined) {
    for (const [datastore, entry] of Object.entries(object(fields.datastorePaths, `${where}.datastorePaths`))) {
      const at = `${where}.datastorePaths.${datastore}`;
      const paths = object(entry, at);
      number(paths, "up", at);
      for (const name of ["allDownSince", "since"]) optionalNumber(paths, name, at);
    }
  }
  return host;
}

const POWER_STATES: readonly VmPowerState[] = ["Starting", "Running", "Stopping", "Off"];

function vmRecord(entry: unknown, where: string): VmRecord {
  const fields = object(entry, where);
  const vm = fields as unknown as VmRecord;
  string(fields, "id", where);
  string(fields, "host", where);
  const config = object(fields.config, `${where}.config`);
  for (const name of ["cpuFeatures", "disks", "nics"]) list(config, name, `${where}.config`);
  object(config.workload, `${where}.config.workload`);
  checked(where, () => validateVmConfig(vm.id, vm.config));
  if (!POWER_STATES.includes(vm.power)) throw new RecordError(`${where}.power ${JSON.stringify(vm.power)} is not a power state`);
  for (const name of ["since", "revision"]) number(fields, name, where);
  for (const name of ["poweredOnAt", "transitionDueAt", "guestSince", "guestStoppedAt", "cpuThrottlePercent"]) optionalNumber(fields, name, where);
  if (typeof vm.guestHung !== "boolean") throw new RecordError(`${where}.guestHung must be true or false`);
  if (vm.lastExit !== undefined) number(object(vm.lastExit, `${where}.lastExit`), "at", `${where}.lastExit`);
  if (vm.lastReport !== undefined) object(vm.lastReport, `${where}.lastReport`);
  if (vm.recoveredFrom !== undefined) {
    const from = object(vm.recoveredFrom, `${where}.recoveredFrom`);
    string(from, "replicaOf", `${where}.recoveredFrom`);
    number(from, "instanceAt", `${where}.recoveredFrom`);
  }
  return vm;
}

function lockRecord(entry: unknown, where: string): DiskLock {
  const fields = object(entry, where);
  for (const name of ["key", "datastore", "disk", "vmId", "host"]) string(fields, name, where);
  number(fields, "acquiredAt", where);
  optionalNumber(fields, "renewedUntil", where);
  return fields as unknown as DiskLock;
}

const MIGRATION_PHASES: readonly MigrationPhase[] = ["PreCopy", "Switchover", "Succeeded", "Failed", "Cancelled"];
const MIGRATION_FIGURES = [
  "cpu", "memoryMiB", "guestDirtyRateMiBps", "startedAt", "rounds", "roundStartedAt", "roundSizeMiB", "roundSentMiB", "bookedAt",
  "transferredMiB", "remainingMiB", "bandwidthMiBps", "dirtyRateMiBps", "throttlePercent", "highDirtyRounds", "lowestRemainingMiB", "lastProgressAt",
];

/** A migration of a VM the file has; one under way runs from the VM's host to another host of the file. */
function migrationRecord(entry: unknown, where: string, world: World): MigrationRecord {
  const fields = object(entry, where);
  const m = fields as unknown as MigrationRecord;
  checkCopy(fields, where);
  checkMigrationPlace(m, where, world);
  return m;
}

/** The figures and settings of a live copy: a migration's, or the copy that makes a secondary. */
function checkCopy(fields: Fields, where: string): void {
  for (const name of ["vm", "key", "source", "target"]) string(fields, name, where);
  const m = fields as unknown as MigrationRecord;
  if (!MIGRATION_PHASES.includes(m.phase)) throw new RecordError(`${where}.phase ${JSON.stringify(m.phase)} is not a migration phase`);
  const settings = migrationSettingsProblem(fields.settings);
  if (settings !== undefined) throw new RecordError(`${where}.settings.${settings}`);
  for (const name of MIGRATION_FIGURES) number(fields, name, where);
  for (const name of ["endedAt", "switchoverEndsAt", "downtimeMs"]) optionalNumber(fields, name, where);
  if (m.bandwidthMiBps <= 0) throw new RecordError(`${where}.bandwidthMiBps must be positive`);
}

function checkMigrationPlace(m: MigrationRecord, where: string, world: World): void {
  const vm = world.vms.get(m.vm);
  if (!vm) throw new RecordError(`${where}: migration of unknown VM ${m.vm}`);
  if (m.phase !== "PreCopy" && m.phase !== "Switchover") return;
  if (vm.host !== m.source || !world.hosts.has(m.target)) {
    throw new RecordError(`${where}: VM ${m.vm} migrates from ${m.source} to ${m.target} but is on ${vm.host}`);
  }
  if (m.phase === "Switchover" && m.switchoverEndsAt === undefined) throw new RecordError(`${where}: a switch-over needs switchoverEndsAt`);
}

function restoreReplication(file: Fields, world: World): void {
  list(file, "links").forEach((entry, i) => {
    const where = `links[${i}]`;
    const fields = object(entry, where);
    const name = string(fields, "name", where);
    if (!(number(fields, "bandwidthMiBps", where) > 0)) throw new RecordError(`${where}.bandwidthMiBps must be positive`);
    world.links.set(name, fields as unknown as ReplicationLink);
  });
  list(file, "replicas").forEach((entry, i) => {
    const replica = replicaRecord(entry, `replicas[${i}]`, world);
    if (world.replicas.has(replica.vm)) throw new RecordError(`replicas[${i}]: VM ${replica.vm} has two replicas`);
    world.replicas.set(replica.vm, replica);
  });
  list(file, "recoveries").forEach((entry, i) => {
    const where = `recoveries[${i}]`;
    const fields = object(entry, where);
    for (const name of ["vm", "host"]) string(fields, name, where);
    for (const name of ["at", "instanceAt", "stoppedWritingAt", "lostMiB"]) number(fields, name, where);
    world.recoveries.push(fields as unknown as RecoveryRecord);
  });
  indexReplicas(world);
}

/** A replica whose figures are numbers, whose sync under way (if any) runs on a link of the file. */
function replicaRecord(entry: unknown, where: string, world: World): ReplicaRecord {
  const fields = object(entry, where);
  const replica = fields as unknown as ReplicaRecord;
  string(fields, "vm", where);
  const settings = replicationSettingsProblem(fields.settings);
  if (settings !== undefined) throw new RecordError(`${where}.settings.${settings}`);
  const writes = object(fields.writes, `${where}.writes`);
  for (const name of ["bookedAt", "writtenMiB", "rateMiBps"]) number(writes, name, `${where}.writes`);
  optionalNumber(writes, "stoppedAt", `${where}.writes`);
  if (typeof writes.writing !== "boolean") throw new RecordError(`${where}.writes.writing must be true or false`);
  list(fields, "instances", where).forEach((instance, i) => {
    const at = `${where}.instances[${i}]`;
    for (const name of ["startedAt", "writtenMiB", "endedAt", "transferredMiB"]) number(object(instance, at), name, at);
  });
  for (const name of ["requestedKeys", "doneKeys"]) {
    list(fields, name, where).forEach((key, i) => {
      if (typeof key !== "string") throw new RecordError(`${where}.${name}[${i}] must be a string`);
    });
  }
  optionalNumber(fields, "nextSyncAt", where);
  if (fields.syncing !== undefined) syncRecord(fields.syncing, `${where}.syncing`, world);
  if (fields.recovery !== undefined) {
    const at = `${where}.recovery`;
    const recovery = object(fields.recovery, at);
    for (const name of ["at", "instanceAt"]) number(recovery, name, at);
    string(recovery, "host", at);
  }
  if (!world.links.has(replica.settings.link)) throw new RecordError(`${where}: replicates over unknown link ${replica.settings.link}`);
  return replica;
}

function syncRecord(entry: unknown, where: string, world: World): void {
  const syncing = object(entry, where);
  for (const name of ["startedAt", "totalMiB", "writtenMiB", "sentMiB", "bookedAt", "bandwidthMiBps", "endsAt"]) number(syncing, name, where);
  if (typeof syncing.full !== "boolean") throw new RecordError(`${where}.full must be true or false`);
  if (!world.links.has(string(syncing, "link", where))) throw new RecordError(`${where}: sync over unknown link ${String(syncing.link)}`);
}

function restoreFaultTolerance(file: Fields, world: World): void {
  world.goLiveRefused = number(file, "goLiveRefused", "the document");
  world.twoPrimaries = number(file, "twoPrimaries", "the document");
  list(file, "secondaries").forEach((entry, i) => {
    const rec = secondaryRecord(entry, `secondaries[${i}]`, world);
    if (world.secondaries.has(rec.vm)) throw new RecordError(`secondaries[${i}]: VM ${rec.vm} has two secondaries`);
    world.secondaries.set(rec.vm, rec);
  });
  list(file, "switchovers").forEach((entry, i) => {
    const where = `switchovers[${i}]`;
    const fields = object(entry, where);
    for (const name of ["vm", "from", "to"]) string(fields, name, where);
    for (const name of ["primaryLostAt", "at"]) number(fields, name, where);
    world.switchovers.set(fields.vm as string, fields as unknown as SwitchoverRecord);
  });
  list(file, "conversions").forEach((entry, i) => {
    const c = conversionRecord(entry, `conversions[${i}]`, world);
    if (world.conversions.has(c.vm)) throw new RecordError(`conversions[${i}]: VM ${c.vm} has two conversions`);
    world.conversions.set(c.vm, c);
  });
}

const SECONDARY_STATES: readonly string[] = ["Copying", "Lockstep", "Failed"];

/** A secondary of a VM the file has, on a host it has while it holds one; a copying one has its copy. */
function secondaryRecord(entry: unknown, where: string, world: World): SecondaryRecord {
  const fields = object(entry, where);
  const rec = fields as unknown as SecondaryRecord;
  for (const name of ["vm", "key", "host", "primaryHost"]) string(fields, name, where);
  if (!SECONDARY_STATES.includes(rec.state)) throw new RecordError(`${where}.state ${JSON.stringify(rec.state)} is not a secondary's state`);
  const settings = faultToleranceSettingsProblem(fields.settings);
  if (settings !== undefined) throw new RecordError(`${where}.settings.${settings}`);
  for (const name of ["since", "cpu", "memoryMiB", "poweredOnAt"]) number(fields, name, where);
  optionalNumber(fields, "primaryLostAt", where);
  if (rec.lastExit !== undefined) number(object(rec.lastExit, `${where}.lastExit`), "at", `${where}.lastExit`);
  if (!world.vms.has(rec.vm)) throw new RecordError(`${where}: secondary of unknown VM ${rec.vm}`);
  if (rec.state === "Failed") return rec;
  if (!world.hosts.has(rec.host)) throw new RecordError(`${where}: secondary on unknown host ${rec.host}`);
  if ((rec.state === "Copying") !== (fields.copy !== undefined)) throw new RecordError(`${where}: a secondary has a copy while, and only while, it is Copying`);
  if (fields.copy !== undefined) checkCopy(object(fields.copy, `${where}.copy`), `${where}.copy`);
  if (fields.replacing !== undefined) {
    const at = `${where}.replacing`;
    const replacing = object(fields.replacing, at);
    for (const name of ["key", "host"]) string(replacing, name, at);
    number(replacing, "since", at);
    const problem = faultToleranceSettingsProblem(replacing.settings);
    if (problem !== undefined) throw new RecordError(`${at}.settings.${problem}`);
    if (!world.hosts.has(rec.replacing!.host)) throw new RecordError(`${at}: secondary on unknown host ${rec.replacing!.host}`);
  }
  return rec;
}

const CONVERSION_PHASES: readonly string[] = ["Converting", "Succeeded", "Failed"];
const HYPERVISORS: readonly string[] = ["esx", "hyperv", "kvm", "xen"];

/** A conversion of a VM the file has; one under way goes from the VM's host to a host of the file. */
function conversionRecord(entry: unknown, where: string, world: World): ConversionRecord {
  const fields = object(entry, where);
  const c = fields as unknown as ConversionRecord;
  for (const name of ["vm", "key", "source", "target"]) string(fields, name, where);
  if (!CONVERSION_PHASES.includes(c.phase)) throw new RecordError(`${where}.phase ${JSON.stringify(c.phase)} is not a conversion's phase`);
  for (const name of ["from", "to"] as const) {
    if (!HYPERVISORS.includes(c[name])) throw new RecordError(`${where}.${name} ${JSON.stringify(c[name])} is not a hypervisor type`);
  }
  const settings = conversionSettingsProblem({ key: c.key, rateMiBps: c.rateMiBps });
  if (settings !== undefined) throw new RecordError(`${where}.${settings}`);
  for (const name of ["startedAt", "endsAt", "totalMiB"]) number(fields, name, where);
  optionalNumber(fields, "convertedMiB", where);
  const config = object(fields.config, `${where}.config`);
  for (const name of ["cpuFeatures", "disks", "nics"]) list(config, name, `${where}.config`);
  object(config.workload, `${where}.config.workload`);
  checked(where, () => validateVmConfig(c.vm, c.config));
  const vm = world.vms.get(c.vm);
  if (!vm) throw new RecordError(`${where}: conversion of unknown VM ${c.vm}`);
  if (c.phase === "Converting" && (vm.host !== c.source || !world.hosts.has(c.target))) {
    throw new RecordError(`${where}: VM ${c.vm} converts from ${c.source} for ${c.target} but is on ${vm.host}`);
  }
  return c;
}

function checked(where: string, check: () => void): void {
  try {
    check();
  } catch (error) {
    throw new RecordError(`${where}: ${(error as Error).message}`, { cause: error });
  }
}

function object(value: unknown, where: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RecordError(`${where} must be an object`);
  return value as Fields;
}

function list(fields: Fields, name: string, where = "the document"): unknown[] {
  const value = fields[name];
  if (!Array.isArray(value)) throw new RecordError(`${where}.${name} must be a list`);
  return value;
}

function string(fields: Fields, name: string, where: string): string {
  const value = fields[name];
  if (typeof value !== "string" || value.length === 0) throw new RecordError(`${where}.${name} must be a non-empty string`);
  return value;
}

function number(fields: Fields, name: string, where: string): number {
  const value = fields[name];
  if (typeof value !== "number" || !Number.isFinite(value)) throw new RecordError(`${where}.${name} must be a number`);
  return value;
}

function optionalNumber(fields: Fields, name: string, where: string): void {
  if (fields[name] !== undefined) number(fields, name, where);
}
