// Live migrations among the simulated hosts: begun once nothing refuses them (migration-checks.ts), run
// round by round on the clock (precopy.ts) over shared links (migration-hosts.ts), and ended — switched
// over, failed or cancelled. The guest runs on its source until the switch-over, when its disk locks pass
// to the target in one instant; whatever ends a migration early leaves at most the source's copy.

import type { MigrationPhase, MigrationSettings } from "../../core/migration.ts";
import { dirtyRateOf, migrationSettingsProblem } from "../../core/migration.ts";
import { ProviderError } from "../provider.ts";
import type { SimContext } from "./faults.ts";
import { requireHost, requireVm } from "./faults.ts";
import { refuseMoveOfProtected } from "./fault-tolerance.ts";
import { refuseMigration } from "./migration-checks.ts";
import { linkShare, migrationOf, migrationsUnderWay } from "./migration-hosts.ts";
import { acquireLocks, releaseLocks } from "./locks.ts";
import { advancePreCopy, book, firstRound, isUnderWay, nextEventAt, setBandwidth } from "./precopy.ts";
import { allPathsDownSince } from "./storage.ts";
import { attachVm, detachVm, isReachable, touch } from "./world.ts";
import type { MigrationRecord, VmRecord, World } from "./world.ts";

export interface MigrationRequest {
  key: string;
  settings: MigrationSettings;
}

/**
 * Begins moving VM `id` to `targetName`, or refuses with the ProviderError that says why. Returns false
 * when the VM's migration under `key` was begun already (under way or ended): a no-op.
 */
export function beginMigration(ctx: SimContext, id: string, targetName: string, request: MigrationRequest): boolean {
  const { world } = ctx;
  if (typeof request.key !== "string" || request.key.length === 0) throw new ProviderError("Invalid", `migration of VM ${id}: key must be a non-empty string`);
  const problem = migrationSettingsProblem(request.settings);
  if (problem !== undefined) throw new ProviderError("Invalid", `migration of VM ${id}: settings.${problem}`);
  const vm = requireVm(world, id);
  if (world.migrations.get(id)?.key === request.key) return false;
  const target = requireHost(world, targetName);
  refuseMoveOfProtected(world, id, targetName);
  refuseMigration(world, vm, target, migrationOf(world, id));
  const now = ctx.now();
  const m = firstRound({
    vm: id,
    key: request.key,
    source: vm.host,
    target: targetName,
    settings: { ...request.settings },
    cpu: vm.config.cpu,
    memoryMiB: vm.config.memoryMiB,
    guestDirtyRateMiBps: dirtyRateOf(vm.config.workload),
  }, now, request.settings.bandwidthMiBps);
  world.migrations.set(id, m);
  shareLinks(world, now);
  touch(world, vm);
  return true;
}

/** Stops the VM's migration under `key` before it switched over; the guest keeps running on its source. */
export function cancelMigration(ctx: SimContext, id: string, key: string): boolean {
  const m = ctx.world.migrations.get(id);
  if (!m || m.key !== key || !isUnderWay(m)) return false;
  const now = ctx.now();
  endMigration(ctx.world, m, { phase: "Cancelled", reason: `cancelled on request; the VM stays on host ${m.source}` }, now);
  shareLinks(ctx.world, now);
  return true;
}

/** The earliest event of any migration under way; among those due at once, the VM that migrated first. */
export function nextMigrationEvent(world: World): { id: string; due: number } | undefined {
  let next: { id: string; due: number } | undefined;
  for (const m of migrationsUnderWay(world)) {
    const due = nextEventAt(m);
    if (due !== undefined && (next === undefined || due < next.due)) next = { id: m.vm, due };
  }
  return next;
}

/** The migration's event (precopy.nextEventAt) has come: a round ends, a deadline passes, or the pause ends. */
export function advanceMigration(ctx: SimContext, id: string, at: number): void {
  const { world } = ctx;
  const m = migrationOf(world, id);
  if (!m) return;
  if (m.phase === "Switchover") {
    switchOver(world, m, at);
  } else {
    const failure = advancePreCopy(m, at);
    if (failure !== undefined) endMigration(world, m, { phase: "Failed", reason: `${failure}; the VM stays on host ${m.source}` }, at);
    else holdGuest(world, m);
  }
  shareLinks(world, at);
}

/**
 * Ends every migration that the change just made broke: a host down or cut off, the VM no longer running
 * on its source. Called after every change to the world, so no fault needs to know about migrations.
 */
export function endBrokenMigrations(ctx: SimContext): void {
  const now = ctx.now();
  let ended = false;
  for (const m of migrationsUnderWay(ctx.world)) {
    const end = whyBroken(ctx.world, m);
    if (!end) continue;
    endMigration(ctx.world, m, end, now);
    ended = true;
  }
  if (ended) shareLinks(ctx.world, now);
}

/** The VM is gone: so is the record of its migrations, and its share of the links. */
export function forgetMigration(world: World, id: string, now: number): void {
  const m = world.migrations.get(id);
  if (!m) return;
  world.migrations.delete(id);
  if (isUnderWay(m)) shareLinks(world, now);
}

/** Refuses a change to the VM that a migration under way forbids, as libvirt refuses a job beside a migration. */
export function refuseWhileMigrating(world: World, id: string, change: string): void {
  const m = migrationOf(world, id);
  if (m) throw new ProviderError("Conflict", `VM ${id} is migrating to host ${m.target}: it cannot ${change} until the migration ends`);
}

interface Ending {
  phase: Extract<MigrationPhase, "Failed" | "Cancelled">;
  reason: string;
}

/**
 * Why `m` cannot go on, told as a surviving host sees it (a connection lost, not a crash it cannot know
 * of); undefined when nothing stops it. A VM that stopped running on its source was cancelled.
 */
function whyBroken(world: World, m: MigrationRecord): Ending | undefined {
  const source = world.hosts.get(m.source);
  const target = world.hosts.get(m.target);
  if (!source || source.crashedAt !== undefined) return { phase: "Failed", reason: `the connection to source host ${m.source} was lost` };
  if (!target || target.crashedAt !== undefined) return { phase: "Failed", reason: `the connection to target host ${m.target} was lost; the VM stays on host ${m.source}` };
  for (const host of [source, target]) {
    if (!isReachable(host)) return { phase: "Failed", reason: `host ${host.name} lost its network; the VM stays on host ${m.source}` };
  }
  const vm = world.vms.get(m.vm);
  if (!vm || vm.host !== m.source) return { phase: "Cancelled", reason: `the VM left host ${m.source}` };
  if (vm.power === "Running") return undefined;
  return { phase: "Cancelled", reason: `the VM was ${stopDescription(vm)} on host ${m.source}` };
}

function stopDescription(vm: VmRecord): string {
  if (vm.power === "Starting") return "reset";
  if (vm.power === "Stopping") return "shutting down";
  return vm.lastExit !== undefined && vm.lastExit.at === vm.since ? `powered off (${vm.lastExit.reason})` : "powered off";
}

/** The pause is over: the guest resumes on the target, which takes over its disk locks in the same instant. */
function switchOver(world: World, m: MigrationRecord, at: number): void {
  const vm = world.vms.get(m.vm);
  const target = world.hosts.get(m.target);
  if (!vm || !target) throw new Error(`simulator invariant broken: migration of ${m.vm} to ${m.target} lost its VM or target`);
  const unreachable = vm.config.disks.find((disk) => allPathsDownSince(target, disk.datastore) !== undefined);
  if (unreachable) {
    endMigration(world, m, { phase: "Failed", reason: `host ${m.target} cannot reach datastore ${unreachable.datastore} to open disk ${unreachable.name}; the VM resumes on host ${m.source}` }, at);
    return;
  }
  releaseLocks(world, vm);
  detachVm(world, vm);
  vm.host = m.target;
  attachVm(world, vm);
  acquireLocks(world, vm, at);
  m.transferredMiB += m.remainingMiB;
  m.remainingMiB = 0;
  finish(world, m, "Succeeded", at);
}

/** Ends `m` early: its figures stay as they were, the guest runs on its source unthrottled. */
function endMigration(world: World, m: MigrationRecord, end: Ending, at: number): void {
  book(m, at);
  m.reason = end.reason;
  finish(world, m, end.phase, at);
}

function finish(world: World, m: MigrationRecord, phase: MigrationPhase, at: number): void {
  m.phase = phase;
  m.endedAt = at;
  delete m.switchoverEndsAt;
  const vm = world.vms.get(m.vm);
  if (!vm) return;
  delete vm.cpuThrottlePercent;
  touch(world, vm);
}

/** The guest as the migration holds it: paused for the switch-over, or throttled by auto-converge. */
function holdGuest(world: World, m: MigrationRecord): void {
  const vm = world.vms.get(m.vm);
  if (!vm) return;
  const percent = m.phase === "Switchover" ? 100 : m.throttlePercent;
  if ((vm.cpuThrottlePercent ?? 0) === percent) return;
  if (percent === 0) delete vm.cpuThrottlePercent;
  else vm.cpuThrottlePercent = percent;
  touch(world, vm);
}

/** Gives every migration under way its share of the links as they are used at `at`. */
function shareLinks(world: World, at: number): void {
  for (const m of migrationsUnderWay(world)) {
    if (m.phase === "PreCopy") setBandwidth(m, at, linkShare(world, m));
  }
}
