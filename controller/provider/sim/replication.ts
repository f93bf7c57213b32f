// Disk replication among the simulated hosts, as vSphere Replication does it (BEHAVIOUR.md, "Replication
// and fault tolerance"): the agent on the VM's host ships to the replica's datastore, over a link shared
// with the other syncs on it, what the guest wrote since the last sync began (the whole disk the first
// time). Event-driven like migrations.ts: each replica has at most one pending event (its sync's end or
// its next sync's start) in a queue; writes are booked at every change to the world, so nothing ticks.

import { MAX_INSTANCES, RPO_RANGE_SECONDS, writeRateOf } from "../../core/replication.ts";
import type { ReplicaObservation, ReplicaState, ReplicationSettings } from "../../core/replication.ts";
import { ProviderError } from "../provider.ts";
import { requireVm } from "./faults.ts";
import { clearEvents, peekEvent, scheduleEvent, takeEvent } from "./replication-queue.ts";
import { allPathsDownSince } from "./storage.ts";
import { isFrozen } from "./vms.ts";
import { isPoweredOn, isReachable } from "./world.ts";
import type { HostRecord, RecoveryRecord, ReplicaInstance, ReplicaRecord, SyncRecord, VmRecord, World, WriteBooking } from "./world.ts";

const MS_PER_S = 1000;
const MIB_PER_GIB = 1024;
/** Less than this left to send, or unshipped, is floating-point dust, not data (a disk block is 1/256 MiB). */
const EPSILON_MIB = 1e-6;
/** Keys of completed syncs remembered, so a retried syncReplica stays a no-op: as many as instances are kept. */
const KEYS_REMEMBERED = MAX_INSTANCES + 1;

const nonEmptyString = (value: unknown) => typeof value === "string" && value.length > 0;
const RPO_MS = { min: RPO_RANGE_SECONDS.min * MS_PER_S, max: RPO_RANGE_SECONDS.max * MS_PER_S };

/** Each setting, what it must be, and how to say it is not. */
const SETTING_CHECKS: readonly [keyof ReplicationSettings, (value: unknown) => boolean, string][] = [
  ["targetDatastore", nonEmptyString, "must be a non-empty string"],
  // BEHAVIOUR.md, Replication: an RPO of 5 min … 24 h.
  ["rpoMs", (value) => typeof value === "number" && value >= RPO_MS.min && value <= RPO_MS.max, `must be between ${RPO_MS.min} and ${RPO_MS.max} (5 min … 24 h)`],
  // BEHAVIOUR.md, Replication: up to 24 point-in-time instances.
  ["instances", (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_INSTANCES, `must be a whole number from 0 to ${MAX_INSTANCES}`],
  ["link", nonEmptyString, "must be a non-empty string"],
  ["linkBandwidthMiBps", (value) => typeof value === "number" && Number.isFinite(value) && value > 0, "must be a positive number"],
];

/** Why the settings are out of range ("field problem"), or undefined when they are fine. */
export function replicationSettingsProblem(settings: unknown): string | undefined {
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return "must be an object";
  const fields = settings as Record<string, unknown>;
  const failed = SETTING_CHECKS.find(([name, check]) => !check(fields[name]));
  return failed && `${failed[0]} ${failed[2]}`;
}

/** Only the fields the settings have: anything else in the object stays behind. */
export function copyReplicationSettings(settings: ReplicationSettings): ReplicationSettings {
  return {
    targetDatastore: settings.targetDatastore,
    rpoMs: settings.rpoMs,
    instances: settings.instances,
    link: settings.link,
    linkBandwidthMiBps: settings.linkBandwidthMiBps,
  };
}

// ------------------------------------------------------------ the provider's calls

/**
 * Replicates VM `id` with `settings`; returns false when it already does so with the same ones (a no-op).
 * A replica that was failed over starts afresh: the VM it became is protected anew (re-protect).
 */
export function configureReplication(world: World, id: string, settings: ReplicationSettings, now: number): boolean {
  const problem = replicationSettingsProblem(settings);
  if (problem !== undefined) throw new ProviderError("Invalid", `replication of VM ${id}: settings.${problem}`);
  const vm = requireVm(world, id);
  const wanted = copyReplicationSettings(settings);
  const linkChanged = world.links.get(wanted.link)?.bandwidthMiBps !== wanted.linkBandwidthMiBps;
  let replica = world.replicas.get(id);
  if (!linkChanged && replicatesAs(replica, wanted)) return false;
  if (linkChanged) world.links.set(wanted.link, { name: wanted.link, bandwidthMiBps: wanted.linkBandwidthMiBps });
  if (!replica || replica.recovery) {
    replica = newReplica(world, vm, wanted, now);
    world.replicas.set(id, replica);
  } else {
    applySettings(world, replica, wanted, now);
  }
  if (linkChanged) shareLinkAt(world, wanted.link, now);
  scheduleNext(world, replica, now);
  return true;
}

/** New settings apply from the next sync; a new target has none of the old one's data, so it begins afresh. */
function applySettings(world: World, replica: ReplicaRecord, settings: ReplicationSettings, now: number): void {
  if (replica.settings.targetDatastore !== settings.targetDatastore) {
    endSync(world, replica, now, true);
    replica.instances = [];
  }
  replica.settings = settings;
  trimInstances(replica);
}

/** Deletes the VM's replica and its instances; false when it had none. */
export function stopReplication(world: World, id: string, now: number): boolean {
  const replica = world.replicas.get(id);
  if (!replica) return false;
  endSync(world, replica, now, false);
  world.replicas.delete(id);
  scheduleEvent(world.replication, id, undefined);
  return true;
}

/** Asks for a sync of the VM's replica at once (after the one under way); false when `key` was asked for already. */
export function requestSync(world: World, id: string, key: string, now: number): boolean {
  if (typeof key !== "string" || key.length === 0) throw new ProviderError("Invalid", `sync of VM ${id}'s replica: key must be a non-empty string`);
  const replica = world.replicas.get(id);
  if (!replica) throw new ProviderError("NotFound", `VM ${id} has no replica`);
  if (replica.recovery) throw new ProviderError("Conflict", `VM ${id}'s replica was failed over to host ${replica.recovery.host}: it ships nothing more`);
  if (replica.requestedKeys.includes(key) || replica.syncing?.key === key || replica.doneKeys.includes(key)) return false;
  replica.requestedKeys.push(key);
  scheduleNext(world, replica, now);
  return true;
}

/**
 * Promotes the replica, as of `instance`, to run the VM (a failover): it ships nothing more. Returns what
 * the failover cost: what the original wrote after the instance's start, booked exactly.
 */
export function promoteReplica(world: World, replica: ReplicaRecord, to: { instance: ReplicaInstance; host: string }, now: number): RecoveryRecord {
  const { instance, host } = to;
  const written = writtenBy(replica.writes, now);
  const stoppedWritingAt = replica.writes.writing ? now : (replica.writes.stoppedAt ?? replica.writes.bookedAt);
  endSync(world, replica, now, false);
  replica.writes = { bookedAt: now, writtenMiB: written, writing: false, rateMiBps: replica.writes.rateMiBps, stoppedAt: stoppedWritingAt };
  replica.requestedKeys = [];
  delete replica.nextSyncAt;
  replica.recovery = { at: now, instanceAt: instance.startedAt, host };
  scheduleEvent(world.replication, replica.vm, undefined);
  const record: RecoveryRecord = { vm: replica.vm, at: now, host, instanceAt: instance.startedAt, stoppedWritingAt, lostMiB: Math.max(0, written - instance.writtenMiB) };
  world.recoveries.push(record);
  return record;
}

// ------------------------------------------------------------ keeping up with the world

/**
 * Re-books every replica after a change to the world: what its VM wrote up to now at the rate it had, and
 * whether it writes from now on; a sync the change made impossible fails (nothing of it is kept); and the
 * next sync is (re)scheduled. Cheap per replica; a replica whose VM did not change is not touched.
 */
export function rebookReplicas(world: World, now: number): void {
  world.replication.datastoresSeen = datastoresSeen(world);
  for (const replica of world.replicas.values()) {
    if (replica.recovery) continue;
    const vm = world.vms.get(replica.vm);
    bookWrites(replica, vm, vm && world.hosts.get(vm.host), now);
    if (replica.syncing && syncProblem(world, replica) !== undefined) endSync(world, replica, now, true);
    scheduleNext(world, replica, now);
  }
}

/** When the earliest replication event is due, if any is. */
export function nextReplicationEventAt(world: World): number | undefined {
  return peekEvent(world.replication)?.due;
}

/**
 * The earliest replication event, if it is due by `until` (before it, unless `inclusive`), happens at its
 * own due time: a sync ends or begins. Returns false when none is due. O(syncs on the link) plus the
 * queue's O(log n).
 */
export function advanceReplication(world: World, until: number, inclusive = true): boolean {
  const next = nextSettledEvent(world);
  if (!next || next.due > until || (!inclusive && next.due === until)) return false;
  takeEvent(world.replication);
  const replica = world.replicas.get(next.vm);
  if (!replica) return true;
  if (replica.syncing) finishSync(world, replica, next.due);
  else beginSyncIfDue(world, replica, next.due);
  return true;
}

/** The earliest event, once the links of an earlier instant than its own are shared out anew. */
function nextSettledEvent(world: World): { due: number; vm: string } | undefined {
  const next = peekEvent(world.replication);
  if (world.replication.sharesDueAt === undefined || next?.due === world.replication.sharesDueAt) return next;
  settleLinks(world);
  return peekEvent(world.replication);
}

/**
 * Shares out anew the links whose syncs began or ended at the last instant: once the events of that instant
 * are done (advanceReplication does it before a later one's), and before anyone looks. Earlier is as
 * right, only dearer: the shares change at that instant either way.
 */
export function settleLinks(world: World): void {
  const index = world.replication;
  const at = index.sharesDueAt;
  if (at === undefined) return;
  delete index.sharesDueAt;
  for (const link of index.linksToShare) shareLink(world, link, at);
  index.linksToShare.clear();
}

/** Rebuilds what is derived from the replicas (the queue, the syncs per link) after a restore. Changes no record. */
export function indexReplicas(world: World): void {
  const index = world.replication;
  clearEvents(index);
  index.syncsByLink.clear();
  index.datastoresSeen = datastoresSeen(world);
  for (const replica of world.replicas.values()) {
    if (replica.syncing) linkSyncs(world, replica.syncing.link).add(replica.vm);
    scheduleEvent(index, replica.vm, eventAt(replica));
  }
}

// ------------------------------------------------------------ what observers see

export function replicaObservation(world: World, replica: ReplicaRecord, now: number): ReplicaObservation {
  const last = replica.instances.at(-1);
  const { state, reason } = replicaState(world, replica);
  const s = replica.syncing;
  return {
    vm: replica.vm,
    state,
    ...(reason !== undefined ? { reason } : {}),
    settings: copyReplicationSettings(replica.settings),
    ...(last ? { lastSync: { startedAt: last.startedAt, endedAt: last.endedAt, transferredMiB: thousandths(last.transferredMiB), ...(last.key !== undefined ? { key: last.key } : {}) } } : {}),
    ...(s ? { syncing: { startedAt: s.startedAt, totalMiB: thousandths(s.totalMiB), sentMiB: thousandths(sentBy(s, now)), full: s.full, ...(s.key !== undefined ? { key: s.key } : {}) } } : {}),
    ...(replica.nextSyncAt !== undefined ? { nextSyncAt: replica.nextSyncAt } : {}),
    instances: replica.instances.map((instance) => instance.startedAt),
    writeRateMiBps: replica.writes.rateMiBps,
    ...(replica.recovery ? { recovery: { ...replica.recovery } } : {}),
  };
}

export function replicaState(world: World, replica: ReplicaRecord): { state: ReplicaState; reason?: string } {
  if (replica.recovery) return { state: "FailedOver" };
  const target = replica.settings.targetDatastore;
  if (!world.replication.datastoresSeen.has(target)) return { state: "Error", reason: `no registered host sees the target datastore ${target}` };
  const shipping: ReplicaState = replica.instances.length > 0 ? "Replicating" : "Initializing";
  if (replica.syncing) return { state: shipping };
  const paused = pauseReason(world, replica);
  if (paused !== undefined) return { state: "Paused", reason: paused };
  if (replica.nextSyncAt === undefined) return { state: "Paused", reason: "the VM is off" };
  return { state: shipping };
}

/** The instance that began at `instanceAt`, or the latest; undefined when there is none such. */
export function instanceOf(replica: ReplicaRecord, instanceAt?: number): ReplicaInstance | undefined {
  if (instanceAt === undefined) return replica.instances.at(-1);
  return replica.instances.find((instance) => instance.startedAt === instanceAt);
}

// ------------------------------------------------------------ writes

/** The VM writes while powered on, on a host that is up, with its disks reachable (not frozen by APD). */
function isWriting(vm: VmRecord | undefined, host: HostRecord | undefined): boolean {
  return vm !== undefined && host !== undefined && isPoweredOn(vm.power) && host.crashedAt === undefined && !isFrozen(vm, host);
}

/** What the VM had written by `at` since replication began, MiB. */
function writtenBy(writes: WriteBooking, at: number): number {
  if (!writes.writing || at <= writes.bookedAt) return writes.writtenMiB;
  return writes.writtenMiB + writes.rateMiBps * ((at - writes.bookedAt) / MS_PER_S);
}

function bookWrites(replica: ReplicaRecord, vm: VmRecord | undefined, host: HostRecord | undefined, now: number): void {
  const writes = replica.writes;
  const writing = isWriting(vm, host);
  const rate = vm ? writeRateOf(vm.config.workload) : writes.rateMiBps;
  if (writing === writes.writing && rate === writes.rateMiBps) return;
  writes.writtenMiB = writtenBy(writes, now);
  writes.bookedAt = Math.max(writes.bookedAt, now);
  if (writes.writing && !writing) writes.stoppedAt = writes.bookedAt;
  writes.writing = writing;
  writes.rateMiBps = rate;
}

function newReplica(world: World, vm: VmRecord, settings: ReplicationSettings, now: number): ReplicaRecord {
  const writing = isWriting(vm, world.hosts.get(vm.host));
  return {
    vm: vm.id,
    settings,
    writes: { bookedAt: now, writtenMiB: 0, writing, rateMiBps: writeRateOf(vm.config.workload), ...(writing ? {} : { stoppedAt: now }) },
    instances: [],
    requestedKeys: [],
    doneKeys: [],
  };
}

// ------------------------------------------------------------ the schedule

/** The replica's pending event: its sync's end while one is under way, else its next sync's start. */
function eventAt(replica: ReplicaRecord): number | undefined {
  return replica.syncing ? replica.syncing.endsAt : replica.nextSyncAt;
}

/**
 * Sets when the next sync begins, keeping a time already set unless the rule moved it. The agent begins a
 * sync RPO/2 after the last completed one began, so that a transfer of up to RPO/2 keeps the RPO
 * (BEHAVIOUR.md: a transfer longer than RPO/2 breaches it), or at once when that is past; the first sync,
 * and one asked for, at once.
 */
function scheduleNext(world: World, replica: ReplicaRecord, now: number): void {
  const base = replica.recovery || replica.syncing ? undefined : nextSyncBase(world, replica, now);
  if (base === undefined) delete replica.nextSyncAt;
  else replica.nextSyncAt = Math.max(base, Math.min(replica.nextSyncAt ?? now, now));
  scheduleEvent(world.replication, replica.vm, eventAt(replica));
}

/** The earliest the next sync may begin by the rule, or undefined when none can or need run now. */
function nextSyncBase(world: World, replica: ReplicaRecord, now: number): number | undefined {
  if (syncProblem(world, replica) !== undefined) return undefined;
  const last = replica.instances.at(-1);
  if (!last || replica.requestedKeys.length > 0) return now;
  const vm = world.vms.get(replica.vm);
  // A VM that is off writes nothing: once what it wrote before is shipped, there is nothing to sync.
  if (vm && !isPoweredOn(vm.power) && writtenBy(replica.writes, now) - last.writtenMiB <= EPSILON_MIB) return undefined;
  return last.startedAt + replica.settings.rpoMs / 2;
}

/** Why no sync of the replica can run now (Error or Paused), or undefined when one can. */
function syncProblem(world: World, replica: ReplicaRecord): string | undefined {
  if (!world.replication.datastoresSeen.has(replica.settings.targetDatastore)) return "target datastore unseen";
  return pauseReason(world, replica);
}

/**
 * Why the VM's host cannot ship anything now: the agent runs on the VM's host, reads the VM's disks and
 * sends over the network, so the host must be up and answering, with a path to each of the VM's disks.
 */
function pauseReason(world: World, replica: ReplicaRecord): string | undefined {
  const vm = world.vms.get(replica.vm);
  if (!vm) return `VM ${replica.vm} is not registered on any host`;
  const host = world.hosts.get(vm.host);
  if (!host || !isReachable(host)) return `host ${vm.host} is not responding`;
  for (const disk of vm.config.disks) {
    if (allPathsDownSince(host, disk.datastore) !== undefined) return `host ${host.name} has all paths down to datastore ${disk.datastore}`;
  }
  return undefined;
}

// ------------------------------------------------------------ syncs

function beginSyncIfDue(world: World, replica: ReplicaRecord, at: number): void {
  const vm = world.vms.get(replica.vm);
  if (!vm || replica.nextSyncAt === undefined || replica.nextSyncAt > at || nextSyncBase(world, replica, at) === undefined) {
    scheduleNext(world, replica, at);
    return;
  }
  const last = replica.instances.at(-1);
  const written = writtenBy(replica.writes, at);
  const key = replica.requestedKeys.shift();
  const link = replica.settings.link;
  replica.syncing = {
    startedAt: at,
    // The first sync copies the whole disk; each later one what was written since the last one began.
    totalMiB: last ? Math.max(0, written - last.writtenMiB) : diskMiB(vm),
    full: last === undefined,
    ...(key !== undefined ? { key } : {}),
    link,
    writtenMiB: written,
    sentMiB: 0,
    bookedAt: at,
    bandwidthMiBps: 0,
    endsAt: at,
  };
  delete replica.nextSyncAt;
  // Its end is scheduled when the link is shared out anew, once every sync beginning now has begun.
  scheduleEvent(world.replication, replica.vm, undefined);
  linkSyncs(world, link).add(replica.vm);
  shareLinkAt(world, link, at);
}

/** The sync's end has come: it becomes the latest instance, the oldest beyond the count kept is dropped. */
function finishSync(world: World, replica: ReplicaRecord, at: number): void {
  const s = replica.syncing;
  if (!s) return;
  bookSync(s, at);
  if (s.sentMiB < s.totalMiB) {
    // Its link is being shared out anew (which schedules its end), or floating point fell a hair short.
    if (!world.replication.linksToShare.has(s.link)) scheduleEvent(world.replication, replica.vm, Math.max(s.endsAt, at + 1));
    return;
  }
  replica.instances.push({ startedAt: s.startedAt, writtenMiB: s.writtenMiB, endedAt: at, transferredMiB: s.totalMiB, ...(s.key !== undefined ? { key: s.key } : {}) });
  trimInstances(replica);
  if (s.key !== undefined) replica.doneKeys = [...replica.doneKeys, s.key].slice(-KEYS_REMEMBERED);
  delete replica.syncing;
  leaveLink(world, s.link, replica.vm, at);
  scheduleNext(world, replica, at);
}

/** Ends the sync under way without an instance; with `retry`, its key is asked for again. */
function endSync(world: World, replica: ReplicaRecord, at: number, retry: boolean): void {
  const s = replica.syncing;
  if (!s) return;
  delete replica.syncing;
  if (retry && s.key !== undefined) replica.requestedKeys.unshift(s.key);
  leaveLink(world, s.link, replica.vm, at);
}

/** BEHAVIOUR.md, Replication: up to 24 point-in-time instances besides the latest. */
function trimInstances(replica: ReplicaRecord): void {
  const keep = replica.settings.instances + 1;
  if (replica.instances.length > keep) replica.instances = replica.instances.slice(-keep);
}

/** What the sync had sent by `at` at the share it has. */
function sentBy(s: SyncRecord, at: number): number {
  if (at <= s.bookedAt) return s.sentMiB;
  const sent = Math.min(s.totalMiB, s.sentMiB + s.bandwidthMiBps * ((at - s.bookedAt) / MS_PER_S));
  // At its end (rounded up to a whole ms) all of it is sent, whatever the floating point says.
  return s.totalMiB - sent < EPSILON_MIB ? s.totalMiB : sent;
}

function bookSync(s: SyncRecord, at: number): void {
  if (at <= s.bookedAt) return;
  s.sentMiB = sentBy(s, at);
  s.bookedAt = at;
}

function diskMiB(vm: VmRecord): number {
  return vm.config.disks.reduce((sum, disk) => sum + disk.sizeGiB * MIB_PER_GIB, 0);
}

// ------------------------------------------------------------ links

function linkSyncs(world: World, link: string): Set<string> {
  let ids = world.replication.syncsByLink.get(link);
  if (!ids) {
    ids = new Set();
    world.replication.syncsByLink.set(link, ids);
  }
  return ids;
}

function leaveLink(world: World, link: string, vm: string, at: number): void {
  const ids = world.replication.syncsByLink.get(link);
  ids?.delete(vm);
  if (ids && ids.size === 0) world.replication.syncsByLink.delete(link);
  shareLinkAt(world, link, at);
}

/** The link's syncs are to be shared out anew as of `at` (settleLinks); an earlier instant's links settle first. */
function shareLinkAt(world: World, link: string, at: number): void {
  const index = world.replication;
  if (index.sharesDueAt !== undefined && index.sharesDueAt !== at) settleLinks(world);
  index.sharesDueAt = at;
  index.linksToShare.add(link);
}

/**
 * Gives every sync under way on the link an even share of its bandwidth from `at` on (a choice: parallel
 * TCP streams over one WAN link converge to fair shares), booking what each sent before at the old share.
 */
function shareLink(world: World, link: string, at: number): void {
  const ids = world.replication.syncsByLink.get(link);
  const bandwidth = world.links.get(link)?.bandwidthMiBps;
  if (!ids || bandwidth === undefined) return;
  const share = bandwidth / ids.size;
  for (const id of ids) {
    const s = world.replicas.get(id)?.syncing;
    if (!s) continue;
    bookSync(s, at);
    s.bandwidthMiBps = share;
    // Whole ms, rounded up; a sync with anything left ends at least a ms on, so its end books progress.
    const left = s.totalMiB - s.sentMiB;
    s.endsAt = left <= 0 ? s.bookedAt : Math.max(s.bookedAt + 1, Math.ceil(s.bookedAt + (left / share) * MS_PER_S));
    scheduleEvent(world.replication, id, s.endsAt);
  }
}

function datastoresSeen(world: World): Set<string> {
  const seen = new Set<string>();
  for (const host of world.hosts.values()) for (const datastore of host.config.datastores) seen.add(datastore);
  return seen;
}

/** The replica replicates (not failed over) with exactly these settings. */
function replicatesAs(replica: ReplicaRecord | undefined, b: ReplicationSettings): boolean {
  if (!replica || replica.recovery) return false;
  const a = replica.settings;
  return a.targetDatastore === b.targetDatastore && a.rpoMs === b.rpoMs && a.instances === b.instances && a.link === b.link && a.linkBandwidthMiBps === b.linkBandwidthMiBps;
}

/** Figures to a thousandth: the model's floating point is not news to an observer. */
function thousandths(n: number): number {
  return Math.round(n * 1000) / 1000;
}
