// Pre-copy live migration of one VM, as QEMU does it (BEHAVIOUR.md, Live migration): round 0 sends all
// memory; each later round sends what the guest dirtied during the one before; the guest pauses to switch
// over once the rest fits the downtime limit. Plain functions of a migration's record and a time: the
// hosts, links, locks and timers around it are migrations.ts's.

import { AUTO_CONVERGE } from "../../core/migration.ts";
import type { MigrationRecord } from "./world.ts";

const MS_PER_S = 1000;
const MIB_PER_GIB = 1024;
/** Less than this left to send in a round is rounding error, not memory (a page is 1/256 MiB). */
const SENT_EPSILON_MIB = 1e-6;

/** A new migration's record, round 0 begun at `at`: everything is still to send. */
export function firstRound(base: Pick<MigrationRecord, "vm" | "key" | "source" | "target" | "settings" | "cpu" | "memoryMiB" | "guestDirtyRateMiBps">, at: number, bandwidthMiBps: number): MigrationRecord {
  return {
    ...base,
    phase: "PreCopy",
    startedAt: at,
    rounds: 1,
    roundStartedAt: at,
    roundSizeMiB: base.memoryMiB,
    roundSentMiB: 0,
    bookedAt: at,
    transferredMiB: 0,
    remainingMiB: base.memoryMiB,
    bandwidthMiBps,
    dirtyRateMiBps: base.guestDirtyRateMiBps,
    throttlePercent: 0,
    highDirtyRounds: 0,
    lowestRemainingMiB: base.memoryMiB,
    lastProgressAt: at,
  };
}

export function isUnderWay(m: MigrationRecord): boolean {
  return m.phase === "PreCopy" || m.phase === "Switchover";
}

/** When the current round has sent all it has to, at the bandwidth it has now (whole ms, rounded up). */
export function roundEndsAt(m: MigrationRecord): number {
  return Math.ceil(m.bookedAt + ((m.roundSizeMiB - m.roundSentMiB) / m.bandwidthMiBps) * MS_PER_S);
}

/** KubeVirt's completion timeout: so long per GiB of memory from the start. */
export function completionDeadline(m: MigrationRecord): number {
  return Math.ceil(m.startedAt + m.settings.completionTimeoutPerGiBMs * (m.memoryMiB / MIB_PER_GIB));
}

/** KubeVirt's progress timeout: so long after what remains last shrank. */
export function progressDeadline(m: MigrationRecord): number {
  return Math.ceil(m.lastProgressAt + m.settings.noProgressTimeoutMs);
}

/** When the migration next has something to decide, or undefined once it ended. */
export function nextEventAt(m: MigrationRecord): number | undefined {
  if (m.phase === "Switchover") return m.switchoverEndsAt;
  if (m.phase !== "PreCopy") return undefined;
  return Math.min(roundEndsAt(m), completionDeadline(m), progressDeadline(m));
}

/**
 * Books what the round sent up to `at` at the bandwidth it had, and what remains then: before the
 * bandwidth changes, and at every event. What remains is the round's unsent memory plus what the guest
 * dirtied since the round began, at most all of it; each new low is progress.
 */
export function book(m: MigrationRecord, at: number): void {
  if (m.phase !== "PreCopy" || at <= m.bookedAt) return;
  let sent = Math.min(m.roundSizeMiB, m.roundSentMiB + m.bandwidthMiBps * ((at - m.bookedAt) / MS_PER_S));
  // At the round's end (rounded up to a whole ms) all of it is sent, whatever the floating point says.
  if (m.roundSizeMiB - sent < SENT_EPSILON_MIB) sent = m.roundSizeMiB;
  const remaining = Math.min(m.memoryMiB, m.roundSizeMiB - sent + dirtiedBy(m, at));
  m.transferredMiB += sent - m.roundSentMiB;
  m.roundSentMiB = sent;
  m.bookedAt = at;
  m.remainingMiB = remaining;
  if (remaining < m.lowestRemainingMiB) {
    m.lowestRemainingMiB = remaining;
    m.lastProgressAt = at;
  }
}

/** Books the round at `at` and gives the rest of it `bandwidthMiBps` (the link was shared anew). */
export function setBandwidth(m: MigrationRecord, at: number, bandwidthMiBps: number): void {
  book(m, at);
  m.bandwidthMiBps = bandwidthMiBps;
}

/**
 * The pre-copy migration's event at `at`: the end of its round (switch over, or begin the next) or a
 * deadline. Returns why it fails, if it does; the caller ends it then.
 */
export function advancePreCopy(m: MigrationRecord, at: number): string | undefined {
  book(m, at);
  if (at >= roundEndsAt(m)) {
    const failure = finishRound(m, at);
    if (failure !== undefined || m.phase !== "PreCopy") return failure;
  }
  if (at >= completionDeadline(m)) {
    const limitS = Math.round((m.settings.completionTimeoutPerGiBMs * (m.memoryMiB / MIB_PER_GIB)) / MS_PER_S);
    return `not done within the completion timeout of ${limitS} s (${fmt(m.settings.completionTimeoutPerGiBMs / MS_PER_S)} s per GiB of ${fmt(m.memoryMiB / MIB_PER_GIB)} GiB): ${fmt(m.remainingMiB)} MiB still to send${rates(m)}`;
  }
  if (at >= progressDeadline(m)) {
    return `no progress for ${fmt(m.settings.noProgressTimeoutMs / MS_PER_S)} s: ${fmt(m.remainingMiB)} MiB still to send${rates(m)}`;
  }
  return undefined;
}

/**
 * The round sent everything: the dirty bitmap is synced and what the guest dirtied meanwhile is what
 * remains. Switch over when it fits the downtime limit at the bandwidth just measured (QEMU's test);
 * else fail at the round limit, or begin the next round under auto-converge's throttle.
 */
function finishRound(m: MigrationRecord, at: number): string | undefined {
  const dirtied = m.remainingMiB;
  const switchable = m.bandwidthMiBps * (m.settings.downtimeLimitMs / MS_PER_S);
  if (dirtied <= switchable) {
    m.phase = "Switchover";
    m.downtimeMs = (dirtied / m.bandwidthMiBps) * MS_PER_S;
    m.switchoverEndsAt = Math.ceil(at + m.downtimeMs);
    return undefined;
  }
  if (m.rounds >= m.settings.maxRounds) {
    return `did not converge in ${m.rounds} rounds: ${fmt(dirtied)} MiB still dirty, more than the ${fmt(m.settings.downtimeLimitMs)} ms downtime limit allows at ${fmt(m.bandwidthMiBps)} MiB/s (${fmt(switchable)} MiB)${rates(m)}`;
  }
  if (m.settings.autoConverge) throttleIfDirtying(m, dirtied);
  m.rounds += 1;
  m.roundStartedAt = at;
  m.roundSizeMiB = dirtied;
  m.roundSentMiB = 0;
  m.dirtyRateMiBps = m.guestDirtyRateMiBps * (1 - m.throttlePercent / 100);
  return undefined;
}

/**
 * QEMU's auto-converge (migration_trigger_throttle): a round that dirtied more than half of what it sent
 * is a high one; at the second (the count is not reset by a low round, as in QEMU) the vCPUs are
 * throttled 20 %, and 10 % more at each second high round after, up to 99 %.
 */
function throttleIfDirtying(m: MigrationRecord, dirtied: number): void {
  if (dirtied > AUTO_CONVERGE.dirtyShareOfSent * m.roundSizeMiB) m.highDirtyRounds += 1;
  if (m.highDirtyRounds < AUTO_CONVERGE.highRoundsBeforeThrottle) return;
  m.highDirtyRounds = 0;
  m.throttlePercent = m.throttlePercent === 0
    ? AUTO_CONVERGE.initialPercent
    : Math.min(AUTO_CONVERGE.maxPercent, m.throttlePercent + AUTO_CONVERGE.incrementPercent);
}

/** What the guest dirtied since the round began (the last bitmap sync), at most all its memory. */
function dirtiedBy(m: MigrationRecord, at: number): number {
  return Math.min(m.memoryMiB, m.dirtyRateMiBps * (Math.max(0, at - m.roundStartedAt) / MS_PER_S));
}

function rates(m: MigrationRecord): string {
  const throttle = m.throttlePercent > 0 ? ` (throttled ${m.throttlePercent} %)` : "";
  const hint = m.dirtyRateMiBps >= m.bandwidthMiBps && !m.settings.autoConverge ? "; auto-converge is off" : "";
  return `; the guest dirties ${fmt(m.dirtyRateMiBps)} MiB/s${throttle}, the link gives ${fmt(m.bandwidthMiBps)} MiB/s${hint}`;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
