// A VM's power transitions and its report. Transitions change the record; the caller arms the clock
// timer for the one that completes later (boot, guest shutdown).

import type { Firmware, NicModel, VmExitReason } from "../../api/types.ts";
import { ProviderError } from "../provider.ts";
import type { VmConfig, VmObservation, WorkloadProfile } from "../../core/observation.ts";
import type { HostTally } from "./hosts.ts";
import { acquireLocks, releaseLocks } from "./locks.ts";
import type { SimTimings } from "./timings.ts";
import { frozenSince } from "./storage.ts";
import { cpuDemand } from "./usage.ts";
import { copyVmConfig, isPoweredOn, lastTick, touch } from "./world.ts";
import type { HostRecord, VmRecord, World } from "./world.ts";

const PROFILES: readonly WorkloadProfile[] = ["Idle", "Steady", "Diurnal", "Bursty"];
/** The NIC models the hypervisors offer: VMware's, QEMU's, Hyper-V's (synthetic and legacy), Xen's. */
export const NIC_MODELS: readonly NicModel[] = ["vmxnet3", "e1000", "e1000e", "virtio", "rtl8139", "netvsc", "legacy", "netfront"];
export const FIRMWARES: readonly Firmware[] = ["BIOS", "EFI", "EFISecureBoot"];

/** A guest with a disk on a datastore in APD is frozen: it does no I/O, no work and sends no heartbeat. */
export function isFrozen(vm: VmRecord, host: HostRecord): boolean {
  return frozenSince(host, vm.config.disks) !== undefined;
}

export function guestHeartbeat(vm: VmRecord, host: HostRecord, now: number, timings: SimTimings): number | undefined {
  if (vm.guestSince === undefined) return undefined;
  const frozenAt = frozenSince(host, vm.config.disks);
  const end = Math.min(now, vm.guestStoppedAt ?? now, frozenAt ?? now, host.crashedAt ?? now);
  return lastTick(vm.guestSince, timings.guestHeartbeatIntervalMs, end);
}

/** Physical cores the guest uses now: its profile's demand while it runs, nothing when hung or frozen. */
export function vmCpuUsage(vm: VmRecord, host: HostRecord, now: number, seed: number): number {
  if (vm.power !== "Running" || vm.guestHung || isFrozen(vm, host) || host.crashedAt !== undefined) return 0;
  // A migration's throttle (auto-converge, or the pause at switch-over) holds the vCPUs back.
  return cpuDemand(seed, vm.id, vm.config, now) * (1 - (vm.cpuThrottlePercent ?? 0) / 100);
}

export function vmObservation(vm: VmRecord, host: HostRecord, now: number, seed: number, timings: SimTimings): VmObservation {
  const report: VmObservation = {
    id: vm.id,
    host: vm.host,
    power: vm.power,
    config: copyVmConfig(vm.config),
    since: vm.since,
    cpuUsage: vmCpuUsage(vm, host, now, seed),
    revision: vm.revision,
  };
  if (vm.poweredOnAt !== undefined) report.poweredOnAt = vm.poweredOnAt;
  if (vm.lastExit) report.lastExit = { ...vm.lastExit };
  const heartbeat = guestHeartbeat(vm, host, now, timings);
  if (heartbeat !== undefined) report.guestHeartbeat = heartbeat;
  return report;
}

/** Adds a VM's report to its host's tally. Memory counts as used once the guest has booted and touched it. */
export function addToTally(tally: HostTally, report: VmObservation): void {
  tally.vmCount += 1;
  if (!isPoweredOn(report.power)) return;
  tally.allocated.cpu += report.config.cpu;
  tally.allocated.memoryMiB += report.config.memoryMiB;
  tally.cpuDemand += report.cpuUsage;
  if (report.power === "Running" || report.power === "Stopping") tally.usedMemoryMiB += report.config.memoryMiB;
}

export function powerOn(world: World, vm: VmRecord, now: number, timings: SimTimings, slowdown = 1): void {
  vm.power = "Starting";
  vm.since = now;
  vm.poweredOnAt = now;
  vm.transitionDueAt = now + timings.bootMs * slowdown;
  delete vm.stopCause;
  delete vm.guestSince;
  delete vm.guestStoppedAt;
  vm.guestHung = false;
  delete vm.lastReport;
  acquireLocks(world, vm, now);
  touch(world, vm);
}

/** The boot completes; a guest that hung while booting never starts its heartbeat. */
export function finishBoot(world: World, vm: VmRecord, now: number): void {
  vm.power = "Running";
  vm.since = now;
  delete vm.transitionDueAt;
  if (!vm.guestHung) vm.guestSince = now;
  touch(world, vm);
}

/** The guest is asked to shut down. A hung guest never answers: the VM stays Stopping until powered off. */
export function beginShutdown(world: World, vm: VmRecord, now: number, timings: SimTimings, slowdown = 1): void {
  vm.power = "Stopping";
  vm.since = now;
  if (vm.guestHung) delete vm.transitionDueAt;
  else vm.transitionDueAt = now + timings.guestShutdownMs * slowdown;
  touch(world, vm);
}

/** The VM is off and its host lets go of its disks. `exit` is set when nobody asked for it. */
export function powerOff(world: World, vm: VmRecord, now: number, exit?: VmExitReason): void {
  releaseLocks(world, vm);
  markOff(world, vm, now, exit);
}

/** Off without releasing locks: the host died with the VM and cannot release anything. */
export function markOff(world: World, vm: VmRecord, now: number, exit?: VmExitReason): void {
  vm.power = "Off";
  vm.since = now;
  delete vm.poweredOnAt;
  delete vm.transitionDueAt;
  if (vm.guestSince !== undefined && vm.guestStoppedAt === undefined) vm.guestStoppedAt = now;
  if (exit) vm.lastExit = { reason: exit, at: now };
  touch(world, vm);
}

/** Refuses a VM description no host could run, naming the field. */
export function validateVmConfig(id: string, config: VmConfig): void {
  if (typeof id !== "string" || id.length === 0) throw new ProviderError("Invalid", "VM id must be a non-empty string");
  const invalid = (field: string, problem: string) => new ProviderError("Invalid", `VM ${id}: config.${field} ${problem}`);
  if (!Number.isInteger(config.cpu) || config.cpu < 1) throw invalid("cpu", "must be a positive integer");
  if (!Number.isInteger(config.memoryMiB) || config.memoryMiB < 1) throw invalid("memoryMiB", "must be a positive integer");
  const diskNames = new Set<string>();
  config.disks.forEach((disk, i) => {
    if (!disk.name || !disk.datastore) throw invalid(`disks[${i}]`, "needs a name and a datastore");
    if (!(disk.sizeGiB > 0)) throw invalid(`disks[${i}].sizeGiB`, "must be positive");
    if (diskNames.has(disk.name)) throw invalid(`disks[${i}].name`, `repeats ${disk.name}`);
    diskNames.add(disk.name);
  });
  config.nics.forEach((nic, i) => {
    if (!nic.network) throw invalid(`nics[${i}].network`, "must be named");
    if (nic.model !== undefined && !NIC_MODELS.includes(nic.model)) throw invalid(`nics[${i}].model`, `must be one of ${NIC_MODELS.join(", ")}`);
  });
  if (config.firmware !== undefined && !FIRMWARES.includes(config.firmware)) throw invalid("firmware", `must be one of ${FIRMWARES.join(", ")}`);
  const problem = workloadProblem(config.workload);
  if (problem) throw invalid(`workload.${problem.field}`, problem.problem);
}

function workloadProblem(workload: VmConfig["workload"]): { field: string; problem: string } | undefined {
  if (!PROFILES.includes(workload.profile)) return { field: "profile", problem: `must be one of ${PROFILES.join(", ")}` };
  const percent = workload.cpuPercent;
  if (!(percent >= 0 && percent <= 100)) return { field: "cpuPercent", problem: "must be between 0 and 100" };
  const dirtyRate = workload.dirtyRateMiBps;
  if (dirtyRate !== undefined && !(dirtyRate >= 0 && Number.isFinite(dirtyRate))) return { field: "dirtyRateMiBps", problem: "must be a non-negative number" };
  const writeRate = workload.diskWriteRateMiBps;
  if (writeRate !== undefined && !(writeRate >= 0 && Number.isFinite(writeRate))) return { field: "diskWriteRateMiBps", problem: "must be a non-negative number" };
  return undefined;
}
