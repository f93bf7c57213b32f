// What a live migration will do, before anything is copied: whether pre-copy converges, in how many rounds,
// with what pause at switch-over and how long in all — from the guest's memory and dirty rate and the link.
// The same rules the hosts follow (provider/sim/precopy.ts, core/migration.ts, BEHAVIOUR.md Live
// migration), at a steady dirty rate and with the migration alone on its link: what a person asks before
// pressing the button. Pure. How close it comes to what the hosts do is measured by
// test/planners/migration-estimate.test.ts and stated in docs/migration.md ("How good the estimate is").

import type { MigrationEstimate } from "../../api/types.ts";
import { AUTO_CONVERGE, DEFAULT_MIGRATION_LINK_MIBPS, type MigrationSettings } from "../../core/migration.ts";

export interface EstimateInput {
  memoryMiB: number;
  dirtyRateMiBps: number;
  settings: Readonly<MigrationSettings>;
  /** What the link gives the migration, MiB/s: its setting, capped by the host's migration link. */
  bandwidthMiBps?: number;
}

/** The migration as it stands at a round's start. */
interface Run {
  round: number;
  /** What this round sends: all memory in round 0, then what the guest dirtied during the round before. */
  remaining: number;
  elapsedMs: number;
  transfer: number;
  throttle: number;
  highRounds: number;
  /** When what remains last reached a new low: KubeVirt's progress timeout runs from there. */
  progressAtMs: number;
}

/**
 * Round by round, as the hosts run it. Within a round what remains to send is the round's unsent memory
 * plus what the guest dirtied since the round began (at most all memory): it shrinks from the round's
 * first instant when the guest dirties slower than the link sends, and never otherwise. The timeouts are
 * deadlines in time, not checks at a round's end: a round still sending when one passes fails there,
 * even one that would have converged at its end.
 */
export function estimateMigration(input: Readonly<EstimateInput>): MigrationEstimate {
  const { memoryMiB, settings } = input;
  const bandwidth = input.bandwidthMiBps ?? Math.min(settings.bandwidthMiBps, DEFAULT_MIGRATION_LINK_MIBPS);
  const switchable = bandwidth * (settings.downtimeLimitMs / 1000);
  const completionMs = settings.completionTimeoutPerGiBMs * (memoryMiB / 1024);
  const why = reasons(input, bandwidth);
  const run: Run = { round: 1, remaining: memoryMiB, elapsedMs: 0, transfer: 0, throttle: 0, highRounds: 0, progressAtMs: 0 };
  for (;;) {
    const rate = input.dirtyRateMiBps * (1 - run.throttle / 100);
    const roundMs = (run.remaining / bandwidth) * 1000;
    const progressing = rate < bandwidth && run.remaining > 0;
    const deadlineMs = Math.min(completionMs, progressing ? Number.POSITIVE_INFINITY : run.progressAtMs + settings.noProgressTimeoutMs);
    const deadline = deadlineMs === completionMs ? why.completion : why.progress;
    if (deadlineMs < run.elapsedMs + roundMs) {
      const sent = bandwidth * ((deadlineMs - run.elapsedMs) / 1000);
      return { ...estimate({ rounds: run.round, elapsedMs: deadlineMs, transferMiB: run.transfer + sent }), reason: deadline };
    }
    run.elapsedMs += roundMs;
    run.transfer += run.remaining;
    if (progressing) run.progressAtMs = run.elapsedMs;
    const dirtied = Math.min(memoryMiB, rate * (roundMs / 1000));
    if (dirtied <= switchable) {
      const downtimeMs = (dirtied / bandwidth) * 1000;
      return estimate({ converges: true, rounds: run.round, downtimeMs, elapsedMs: run.elapsedMs + downtimeMs, transferMiB: run.transfer + dirtied });
    }
    if (run.round >= settings.maxRounds) return { ...estimate({ rounds: run.round, elapsedMs: run.elapsedMs, transferMiB: run.transfer }), reason: why.rounds };
    if (settings.autoConverge) throttleIfDirtying(run, dirtied);
    run.remaining = dirtied;
    run.round += 1;
    // A deadline that falls on a round's very end is judged once the next round has begun, as the hosts do.
    if (run.elapsedMs >= deadlineMs) return { ...estimate({ rounds: run.round, elapsedMs: run.elapsedMs, transferMiB: run.transfer }), reason: deadline };
  }
}

/**
 * QEMU's auto-converge, as the hosts count it: a round that dirtied more than half of what it sent is a
 * high one; a round below the share does not reset the count, a throttle step does.
 */
function throttleIfDirtying(run: Run, dirtied: number): void {
  if (dirtied > AUTO_CONVERGE.dirtyShareOfSent * run.remaining) run.highRounds++;
  if (run.highRounds < AUTO_CONVERGE.highRoundsBeforeThrottle) return;
  run.throttle = run.throttle === 0 ? AUTO_CONVERGE.initialPercent : Math.min(AUTO_CONVERGE.maxPercent, run.throttle + AUTO_CONVERGE.incrementPercent);
  run.highRounds = 0;
}

function reasons(input: Readonly<EstimateInput>, bandwidth: number): Record<"completion" | "progress" | "rounds", string> {
  const { settings } = input;
  const rates = `the guest dirties ${fmt(input.dirtyRateMiBps)} MiB/s, the link sends ${fmt(bandwidth)} MiB/s`;
  const hint = settings.autoConverge ? "" : " (auto-converge is off)";
  return {
    completion: `not done within the completion timeout of ${Math.round((settings.completionTimeoutPerGiBMs * (input.memoryMiB / 1024)) / 1000)} s: ${rates}`,
    progress: `no progress for ${fmt(settings.noProgressTimeoutMs / 1000)} s: ${rates}${hint}`,
    rounds: `does not converge within ${settings.maxRounds} rounds: ${rates}${hint}`,
  };
}

/** A failed estimate's duration is when the hosts give up; its downtime is none. */
function estimate(e: { converges?: boolean; rounds: number; downtimeMs?: number; elapsedMs: number; transferMiB: number }): MigrationEstimate {
  return {
    converges: e.converges ?? false,
    rounds: e.rounds,
    downtimeMs: Math.round(e.downtimeMs ?? 0),
    durationSeconds: Math.round(e.elapsedMs / 100) / 10,
    transferMiB: Math.round(e.transferMiB),
  };
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
