// Fault tolerance among the simulated hosts, as vSphere FT does it (BEHAVIOUR.md, Replication and fault
// tolerance): protectVm makes a secondary by a live copy over the FT logging link (precopy.ts), then keeps
// it in lockstep. When the primary stops answering over the link, the secondary waits FT_GO_LIVE_MS and
// tries to go live by taking the VM's disk locks (a test-and-set): it wins only if the primary is gone, and
// the VM then runs on from the secondary's host, its run unbroken. A primary that still runs keeps its
// locks, so the secondary loses and fails: never two primaries.

import { FT_GO_LIVE_MS } from "../../core/fault-tolerance.ts";
import type { FaultToleranceSettings } from "../../core/fault-tolerance.ts";
import { dirtyRateOf, migrationSettingsProblem } from "../../core/migration.ts";
import { ProviderError } from "../provider.ts";
import { fenceIfDue, requireHost, requireVm } from "./faults.ts";
import type { SimContext } from "./faults.ts";
import { acquireLocks, isLockLive, lockKeysOf, releaseLocks } from "./locks.ts";
import { incompatibility, refuseTarget } from "./migration-checks.ts";
import { migrationOf } from "./migration-hosts.ts";
import { hostOf } from "./observation.ts";
import { advancePreCopy, firstRound, nextEventAt, setBandwidth } from "./precopy.ts";
import { copiesPerHost, copyShare, isLive, loggingLinkUp, loggingNeeds, secondaryHosts } from "./secondaries.ts";
import { allPathsDownSince } from "./storage.ts";
import { attachVm, detachVm, isPoweredOn, isReachable, touch } from "./world.ts";
import type { DiskLock, HostRecord, ReplacedSecondary, SecondaryRecord, VmRecord, World } from "./world.ts";

export interface ProtectRequest {
  key: string;
  settings: FaultToleranceSettings;
}

/** What is wrong with the settings, naming the field, or undefined. */
export function faultToleranceSettingsProblem(settings: unknown): string | undefined {
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return "must be an object";
  const fields = settings as Record<string, unknown>;
  const bandwidth = fields.loggingBandwidthMiBps;
  if (typeof bandwidth !== "number" || !Number.isFinite(bandwidth) || bandwidth <= 0) return "loggingBandwidthMiBps must be a positive number";
  const copy = migrationSettingsProblem(fields.copy);
  return copy === undefined ? undefined : `copy${copy === "must be an object" ? " " : "."}${copy}`;
}

/** Only the fields the settings have: anything else in the objects stays behind. */
export function copyFaultToleranceSettings(settings: FaultToleranceSettings): FaultToleranceSettings {
  const { copy } = settings;
  return {
    loggingBandwidthMiBps: settings.loggingBandwidthMiBps,
    copy: {
      bandwidthMiBps: copy.bandwidthMiBps,
      downtimeLimitMs: copy.downtimeLimitMs,
      maxRounds: copy.maxRounds,
      noProgressTimeoutMs: copy.noProgressTimeoutMs,
      completionTimeoutPerGiBMs: copy.completionTimeoutPerGiBMs,
      autoConverge: copy.autoConverge,
    },
  };
}

// ------------------------------------------------------------ the provider's calls

/**
 * Gives VM `id` a secondary on `hostName`, or moves its secondary there (make before break: the one in
 * lockstep protects the VM until the new one is); false when the secondary is there already (a no-op).
 * Moving back to the host of the secondary being replaced abandons the move.
 */
export function protectVm(ctx: SimContext, id: string, hostName: string, request: ProtectRequest): boolean {
  const { world } = ctx;
  refuseRequest(id, request);
  const vm = requireVm(world, id);
  const target = requireHost(world, hostName);
  const existing = world.secondaries.get(id);
  if (existing && isLive(existing) && existing.host === hostName) return false;
  if (existing?.replacing?.host === hostName) {
    keepReplaced(world, existing, vm);
    return true;
  }
  refuseSecondary(world, vm, target);
  const now = ctx.now();
  const rec = newSecondary(vm, hostName, request, now);
  const replaced = existing && replacedBy(existing);
  if (replaced) rec.replacing = replaced;
  world.secondaries.set(id, rec);
  throttleGuest(world, vm, 0);
  shareLoggingLinks(world, now);
  touch(world, vm);
  return true;
}

/**
 * What a new secondary replaces, to drop once it is in lockstep: the one in lockstep now, or the one a
 * move under way replaces already. A secondary still being made, or failed, protects nothing: it just goes.
 */
function replacedBy(existing: SecondaryRecord): ReplacedSecondary | undefined {
  if (existing.state === "Lockstep") return { key: existing.key, host: existing.host, since: existing.since, settings: existing.settings };
  return existing.replacing;
}

function refuseRequest(id: string, request: ProtectRequest): void {
  if (typeof request.key !== "string" || request.key.length === 0) throw new ProviderError("Invalid", `fault tolerance of VM ${id}: key must be a non-empty string`);
  const problem = faultToleranceSettingsProblem(request.settings);
  if (problem !== undefined) throw new ProviderError("Invalid", `fault tolerance of VM ${id}: settings.${problem}`);
}

/** A secondary of the running VM about to be copied to `host`, holding what the VM has now. */
function newSecondary(vm: VmRecord, host: string, request: ProtectRequest, now: number): SecondaryRecord {
  const settings = copyFaultToleranceSettings(request.settings);
  return {
    vm: vm.id,
    key: request.key,
    host,
    primaryHost: vm.host,
    state: "Copying",
    since: now,
    settings,
    cpu: vm.config.cpu,
    memoryMiB: vm.config.memoryMiB,
    poweredOnAt: vm.poweredOnAt ?? vm.since,
    ...(vm.lastExit ? { lastExit: { ...vm.lastExit } } : {}),
    // Its bandwidth is the logging links' share (shareLoggingLinks), given as soon as it is among the copies.
    copy: firstRound({
      vm: vm.id,
      key: request.key,
      source: vm.host,
      target: host,
      settings: settings.copy,
      cpu: vm.config.cpu,
      memoryMiB: vm.config.memoryMiB,
      guestDirtyRateMiBps: dirtyRateOf(vm.config.workload),
    }, now, settings.copy.bandwidthMiBps),
  };
}

/** Drops the VM's secondary; false when it has none. A live one is dropped by the primary's host, which must answer. */
export function unprotectVm(ctx: SimContext, id: string): boolean {
  const rec = ctx.world.secondaries.get(id);
  if (!rec) return false;
  const vm = ctx.world.vms.get(id);
  if (vm && isLive(rec)) {
    const host = hostOf(ctx.world, vm);
    if (!isReachable(host)) throw new ProviderError("Unavailable", `VM ${id}'s host ${host.name} is not responding: it cannot turn fault tolerance off`);
  }
  drop(ctx.world, rec);
  shareLoggingLinks(ctx.world, ctx.now());
  return true;
}

/**
 * Refuses moving VM `id` to `target` (a live migration, an administrator's move) while its secondary is
 * being made, or onto a host with its secondary: a primary never runs beside its own secondary.
 */
export function refuseMoveOfProtected(world: World, id: string, target: string): void {
  const rec = world.secondaries.get(id);
  if (!rec || !isLive(rec)) return;
  if (rec.state === "Copying") throw new ProviderError("Conflict", `VM ${id}'s secondary is being made on host ${rec.host}: the VM cannot move until it is in lockstep`);
  if (secondaryHosts(rec).includes(target)) throw new ProviderError("Conflict", `host ${target} runs VM ${id}'s secondary: a primary cannot run beside its secondary`);
}

/** As for a live migration (migration-checks.ts), and never on the primary's own host. */
function refuseSecondary(world: World, vm: VmRecord, target: HostRecord): void {
  const source = hostOf(world, vm);
  if (!isReachable(source)) throw new ProviderError("Unavailable", `VM ${vm.id}'s host ${source.name} is not responding`);
  if (target.name === source.name) throw new ProviderError("Conflict", `host ${target.name} runs VM ${vm.id}'s primary: its secondary must run on another host`);
  if (vm.power !== "Running") throw new ProviderError("Conflict", `VM ${vm.id} is ${vm.power}: only a running VM can have a secondary`);
  const migration = migrationOf(world, vm.id);
  if (migration) throw new ProviderError("Conflict", `VM ${vm.id} is migrating to host ${migration.target}: it can have a secondary once the migration ends`);
  const incompatible = incompatibility(vm, source, target);
  if (incompatible !== undefined) throw new ProviderError("Incompatible", `VM ${vm.id} cannot have a secondary on host ${target.name}: ${incompatible}`);
  refuseTarget(world, vm, target);
}

// ------------------------------------------------------------ keeping up with the world

/**
 * Brings every secondary in line with the world after a change, as endBrokenMigrations does for migrations:
 * a copy that lost its primary, its host or its link fails; a secondary in lockstep whose primary stopped
 * answering starts counting down to its go-live; one whose primary was stopped on purpose is dropped.
 */
export function settleSecondaries(ctx: SimContext): void {
  const { world } = ctx;
  if (world.secondaries.size === 0) return;
  const now = ctx.now();
  // Deleting the entry visited is safe while iterating a Map.
  for (const rec of world.secondaries.values()) {
    const vm = world.vms.get(rec.vm);
    if (!vm) {
      world.secondaries.delete(rec.vm);
      continue;
    }
    if (!isLive(rec)) continue;
    dropLostReplaced(world, rec, vm);
    if (rec.state === "Copying") settleCopy(world, rec, vm, now);
    if (rec.state === "Lockstep") settleLockstep(world, rec, vm, now);
  }
  shareLoggingLinks(world, now);
}

/** The earliest event of any secondary: a copy's (precopy.nextEventAt), or a go-live falling due. */
export function nextSecondaryEvent(world: World): { id: string; due: number } | undefined {
  let next: { id: string; due: number } | undefined;
  for (const rec of world.secondaries.values()) {
    const due = eventAt(rec);
    if (due !== undefined && (next === undefined || due < next.due)) next = { id: rec.vm, due };
  }
  return next;
}

/** The secondary's event has come: its copy's round ends or a deadline passes, or it tries to go live. */
export function advanceSecondary(ctx: SimContext, id: string, at: number): void {
  const { world } = ctx;
  const rec = world.secondaries.get(id);
  const vm = world.vms.get(id);
  if (!rec || !vm) return;
  if (rec.state === "Copying") advanceCopy(world, rec, vm, at);
  else if (rec.state === "Lockstep" && rec.primaryLostAt !== undefined && at >= rec.primaryLostAt + FT_GO_LIVE_MS) goLiveOrFail(ctx, rec, vm, at);
  shareLoggingLinks(world, at);
}

/** Gives every copy its share of the logging links as they are used at `at`, booking it only when it changes. */
function shareLoggingLinks(world: World, at: number): void {
  let needs: Map<string, number> | undefined;
  let copies: Map<string, number> | undefined;
  for (const rec of world.secondaries.values()) {
    if (!rec.copy) continue;
    needs ??= loggingNeeds(world);
    copies ??= copiesPerHost(world);
    const share = copyShare(rec, needs, copies);
    if (share !== rec.copy.bandwidthMiBps) setBandwidth(rec.copy, at, share);
  }
}

function eventAt(rec: SecondaryRecord): number | undefined {
  if (rec.copy) return nextEventAt(rec.copy);
  if (rec.state === "Lockstep" && rec.primaryLostAt !== undefined) return rec.primaryLostAt + FT_GO_LIVE_MS;
  return undefined;
}

// ------------------------------------------------------------ the primary and the link

/**
 * The exits FT protects against: the host's failure (also once the host is back), VM component
 * protection's power-off and the host's storage fence (the primary stopped because its storage went).
 */
const LOST_EXITS: ReadonlySet<string> = new Set(["HostFailure", "StorageFailure", "PoweredOff"]);

type Primary = { state: "Runs" } | { state: "Lost"; at: number; why: string } | { state: "Stopped" };

/**
 * Runs: Running on a host that is up. Lost: its host failed (and may be back already), or it was powered
 * off because its host lost its storage (the fence, or VM component protection): what FT protects
 * against. Stopped: anything else
 * (powered off, shut down, reset, crashed: the guest crashes in lockstep on both).
 */
function primaryOf(world: World, vm: VmRecord): Primary {
  const host = hostOf(world, vm);
  if (host.crashedAt !== undefined) return { state: "Lost", at: host.crashedAt, why: `the primary's host ${host.name} failed` };
  if (vm.power === "Running") return { state: "Runs" };
  const exit = vm.lastExit;
  if (vm.power === "Off" && exit !== undefined && exit.at === vm.since && LOST_EXITS.has(exit.reason)) {
    const why = exit.reason === "HostFailure" ? "failed" : "lost its storage and powered it off";
    return { state: "Lost", at: vm.since, why: `the primary's host ${host.name} ${why}` };
  }
  return { state: "Stopped" };
}

/** Why the secondary on `host` no longer hears the running primary, or undefined while it does. */
function linkProblem(world: World, vm: VmRecord, host: string): string | undefined {
  const secondary = world.hosts.get(host);
  if (!secondary || secondary.crashedAt !== undefined) return `host ${host} failed`;
  if (!loggingLinkUp(hostOf(world, vm), secondary)) return `the FT logging link between hosts ${vm.host} and ${host} was lost`;
  return undefined;
}

/** The secondary a move replaces stops protecting the VM once its host fails or it no longer hears the primary. */
function dropLostReplaced(world: World, rec: SecondaryRecord, vm: VmRecord): void {
  const replaced = rec.replacing;
  if (!replaced) return;
  // Its primary's host failing is what it is kept for: it goes live (settleCopy hands the VM back to it).
  if (hostOf(world, vm).crashedAt !== undefined && world.hosts.get(replaced.host)?.crashedAt === undefined) return;
  if (linkProblem(world, vm, replaced.host) !== undefined) delete rec.replacing;
}

function settleCopy(world: World, rec: SecondaryRecord, vm: VmRecord, now: number): void {
  const primary = primaryOf(world, vm);
  if (primary.state === "Stopped") {
    drop(world, rec);
    return;
  }
  const problem = primary.state === "Lost" ? `${primary.why} before the copy completed` : linkProblem(world, vm, rec.host);
  if (problem !== undefined) failCopy(world, rec, problem, now);
}

function settleLockstep(world: World, rec: SecondaryRecord, vm: VmRecord, now: number): void {
  const primary = primaryOf(world, vm);
  if (primary.state === "Stopped") {
    drop(world, rec);
    return;
  }
  const host = world.hosts.get(rec.host);
  if (!host || host.crashedAt !== undefined) {
    fail(world, rec, `host ${rec.host} failed`, now);
    return;
  }
  if (primary.state === "Lost") {
    rec.primaryLostAt ??= primary.at;
    return;
  }
  rec.primaryHost = vm.host;
  // The primary runs: a link that is cut makes the secondary try to go live (and lose); one back in time does not.
  if (loggingLinkUp(hostOf(world, vm), host)) delete rec.primaryLostAt;
  else rec.primaryLostAt ??= now;
}

// ------------------------------------------------------------ the copy

function advanceCopy(world: World, rec: SecondaryRecord, vm: VmRecord, at: number): void {
  const m = rec.copy;
  if (!m) return;
  const failure = advancePreCopy(m, at);
  if (failure !== undefined) failCopy(world, rec, `the live copy failed: ${failure}`, at);
  else if (m.phase === "Switchover") enterLockstep(world, rec, vm, at);
  else throttleGuest(world, vm, m.throttlePercent);
}

/**
 * The copy converged: the secondary follows the primary from now on. What was still dirty goes over the
 * logging link as lockstep begins, so the guest is not paused (a choice). A secondary it replaces is dropped.
 */
function enterLockstep(world: World, rec: SecondaryRecord, vm: VmRecord, at: number): void {
  rec.state = "Lockstep";
  rec.since = at;
  delete rec.copy;
  delete rec.reason;
  delete rec.replacing;
  throttleGuest(world, vm, 0);
  touch(world, vm);
}

/** The copy ends without a secondary: the one it was to replace, if any still protects, is the VM's secondary again. */
function failCopy(world: World, rec: SecondaryRecord, reason: string, at: number): void {
  const vm = world.vms.get(rec.vm);
  if (vm) throttleGuest(world, vm, 0);
  if (!rec.replacing || !vm) {
    fail(world, rec, reason, at);
    return;
  }
  const movedTo = rec.host;
  keepReplaced(world, rec, vm);
  rec.reason = `moving the secondary to host ${movedTo} failed: ${reason}`;
}

/** The move is over without its new secondary: the one in lockstep it was to replace is the VM's again. */
function keepReplaced(world: World, rec: SecondaryRecord, vm: VmRecord): void {
  const replaced = rec.replacing;
  if (!replaced) return;
  throttleGuest(world, vm, 0);
  rec.key = replaced.key;
  rec.host = replaced.host;
  rec.since = replaced.since;
  rec.settings = replaced.settings;
  rec.state = "Lockstep";
  delete rec.copy;
  delete rec.reason;
  delete rec.replacing;
  touch(world, vm);
}

/** The copy's auto-converge throttle holds the guest back while it runs, as a migration's does. */
function throttleGuest(world: World, vm: VmRecord, percent: number): void {
  if ((vm.cpuThrottlePercent ?? 0) === percent) return;
  if (percent === 0) delete vm.cpuThrottlePercent;
  else vm.cpuThrottlePercent = percent;
  touch(world, vm);
}

// ------------------------------------------------------------ going live

/**
 * FT_GO_LIVE_MS after the primary stopped answering, the secondary takes the VM's disk locks, or fails: it
 * loses the test-and-set while the primary runs on a host that answers or renews (the storage fence that
 * fell due has happened by now), and it cannot go live where its host does not answer or reach the disks.
 */
function goLiveOrFail(ctx: SimContext, rec: SecondaryRecord, vm: VmRecord, at: number): void {
  const { world } = ctx;
  fenceIfDue(ctx, hostOf(world, vm));
  const lost = raceLost(ctx, rec, vm, at);
  if (lost !== undefined) {
    world.goLiveRefused += 1;
    fail(world, rec, lost, at);
    return;
  }
  const unable = cannotGoLive(world, rec, vm);
  if (unable !== undefined) {
    fail(world, rec, unable, at);
    return;
  }
  goLive(ctx, rec, vm, at);
}

/** Why the primary keeps the VM: it still runs where the management knows it, or a live host holds a disk lock. */
function raceLost(ctx: SimContext, rec: SecondaryRecord, vm: VmRecord, at: number): string | undefined {
  const primary = hostOf(ctx.world, vm);
  if (primary.crashedAt === undefined && isPoweredOn(vm.power)) {
    return `the primary still runs on host ${primary.name}${vm.config.disks.length > 0 ? ": it keeps the disk lock" : ""}`;
  }
  const lock = lockRenewedElsewhere(ctx, vm, rec.host, at);
  return lock && `disk ${lock.disk} on datastore ${lock.datastore} is locked by host ${lock.host}`;
}

/**
 * A live lock on one of the VM's disks that a host other than `host` still renews. A crashed host's locks
 * lapse only after a lease, but the dead primary does not contend: the FT pair's own test-and-set.
 */
function lockRenewedElsewhere(ctx: SimContext, vm: VmRecord, host: string, at: number): DiskLock | undefined {
  const { world, timings } = ctx;
  for (const key of lockKeysOf(vm.id, vm.config)) {
    const lock = world.locks.get(key);
    if (!lock || lock.host === host || world.hosts.get(lock.host)?.crashedAt !== undefined) continue;
    if (isLockLive(world, lock, at, timings)) return lock;
  }
  return undefined;
}

function cannotGoLive(world: World, rec: SecondaryRecord, vm: VmRecord): string | undefined {
  const host = world.hosts.get(rec.host);
  if (!host || host.crashedAt !== undefined) return `host ${rec.host} failed`;
  if (!isReachable(host)) return `host ${rec.host} is cut off from the network: its secondary cannot take over`;
  const disk = vm.config.disks.find((d) => !host.config.datastores.includes(d.datastore) || allPathsDownSince(host, d.datastore) !== undefined);
  if (disk) return `host ${rec.host} cannot reach datastore ${disk.datastore} to open disk ${disk.name}`;
  return undefined;
}

/**
 * The secondary becomes the VM: its record moves to the secondary's host, Running, with the same power-on
 * time and last exit as before (no boot, no restart), and the disk locks pass to that host at once.
 */
function goLive(ctx: SimContext, rec: SecondaryRecord, vm: VmRecord, at: number): void {
  const { world } = ctx;
  const from = hostOf(world, vm);
  // The check, apart from the decision: the host the VM leaves must not be running it.
  if (from.crashedAt === undefined && isPoweredOn(vm.power)) world.twoPrimaries += 1;
  releaseLocks(world, vm);
  detachVm(world, vm);
  vm.host = rec.host;
  attachVm(world, vm);
  vm.power = "Running";
  vm.since = at;
  vm.poweredOnAt = rec.poweredOnAt;
  if (rec.lastExit) vm.lastExit = { ...rec.lastExit };
  else delete vm.lastExit;
  delete vm.transitionDueAt;
  delete vm.stopCause;
  delete vm.lastReport;
  delete vm.cpuThrottlePercent;
  if (!vm.guestHung) {
    vm.guestSince = at;
    delete vm.guestStoppedAt;
  }
  acquireLocks(world, vm, at);
  touch(world, vm);
  world.switchovers.set(vm.id, { vm: vm.id, from: from.name, to: rec.host, primaryLostAt: rec.primaryLostAt ?? at, at });
  world.secondaries.delete(vm.id);
  ctx.syncTransition(vm);
}

// ------------------------------------------------------------ ends

/** The secondary is gone; the record says why until the VM is protected anew or unprotected. */
function fail(world: World, rec: SecondaryRecord, reason: string, at: number): void {
  rec.state = "Failed";
  rec.since = at;
  rec.reason = reason;
  delete rec.copy;
  delete rec.primaryLostAt;
  delete rec.replacing;
  const vm = world.vms.get(rec.vm);
  if (vm) touch(world, vm);
}

function drop(world: World, rec: SecondaryRecord): void {
  world.secondaries.delete(rec.vm);
  const vm = world.vms.get(rec.vm);
  if (!vm) return;
  if (rec.copy) throttleGuest(world, vm, 0);
  touch(world, vm);
}
