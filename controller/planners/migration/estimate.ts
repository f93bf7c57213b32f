// What a live migration will do, before anything is copied: whether pre-copy converges, in how many rounds,
// with what pause at switch-over and how long in all — from the guest's memory and dirty rate and the link.
// The same rules the hosts follow (core/migration.ts, BEHAVIOUR.md Live migration), at a steady dirty rate
// and with the migration alone on its link: what a person asks before pressing the button. Pure.

import type { MigrationEstimate } from "../../api/types.ts";
import { AUTO_CONVERGE, DEFAULT_MIGRATION_LINK_MIBPS, type MigrationSettings } from "../../core/migration.ts";

export interface EstimateInput {
  memoryMiB: number;
  dirtyRateMiBps: number;
  settings: Readonly<MigrationSettings>;
  /** What the link gives the migration, MiB/s: its setting, capped by the host's migration link. */
  bandwidthMiBps?: number;
}

export function estimateMigration(input: Readonly<EstimateInput>): MigrationEstimate {
  const { memoryMiB, settings } = input;
  const bandwidth = input.bandwidthMiBps ?? Math.min(settings.bandwidthMiBps, DEFAULT_MIGRATION_LINK_MIBPS);
  const completionLimitMs = settings.completionTimeoutPerGiBMs * (memoryMiB / 1024);
  const switchable = bandwidth * (settings.downtimeLimitMs / 1000);
  let remaining = memoryMiB;
  let elapsedMs = 0;
  let transfer = 0;
  let throttle = 0;
  let highRounds = 0;
  let stalledMs = 0;
  for (let round = 1; round <= settings.maxRounds; round++) {
    const roundMs = (remaining / bandwidth) * 1000;
    elapsedMs += roundMs;
    transfer += remaining;
    const dirtied = Math.min(memoryMiB, input.dirtyRateMiBps * (1 - throttle / 100) * (roundMs / 1000));
    if (dirtied <= switchable) {
      const downtimeMs = (dirtied / bandwidth) * 1000;
      return finish(true, round, downtimeMs, elapsedMs + downtimeMs, transfer + dirtied);
    }
    stalledMs = dirtied >= remaining ? stalledMs + roundMs : 0;
    if (stalledMs > settings.noProgressTimeoutMs) return finish(false, round, 0, elapsedMs, transfer, `no progress for ${Math.round(stalledMs / 1000)} s: the guest dirties ${fmt(input.dirtyRateMiBps)} MiB/s, the link sends ${fmt(bandwidth)} MiB/s`);
    if (elapsedMs > completionLimitMs) return finish(false, round, 0, elapsedMs, transfer, `longer than the completion timeout of ${Math.round(completionLimitMs / 1000)} s`);
    if (settings.autoConverge) {
      // As QEMU counts: a round below the share does not reset the count, a throttle step does.
      if (dirtied > AUTO_CONVERGE.dirtyShareOfSent * remaining) highRounds++;
      if (highRounds >= AUTO_CONVERGE.highRoundsBeforeThrottle) {
        throttle = throttle === 0 ? AUTO_CONVERGE.initialPercent : Math.min(AUTO_CONVERGE.maxPercent, throttle + AUTO_CONVERGE.incrementPercent);
        highRounds = 0;
      }
    }
    remaining = dirtied;
  }
  return finish(false, settings.maxRounds, 0, elapsedMs, transfer, `does not converge within ${settings.maxRounds} rounds: the guest dirties ${fmt(input.dirtyRateMiBps)} MiB/s, the link sends ${fmt(bandwidth)} MiB/s${settings.autoConverge ? "" : " (auto-converge is off)"}`);
}

function finish(converges: boolean, rounds: number, downtimeMs: number, elapsedMs: number, transferMiB: number, reason?: string): MigrationEstimate {
  return {
    converges,
    rounds,
    downtimeMs: Math.round(downtimeMs),
    durationSeconds: Math.round(elapsedMs / 100) / 10,
    transferMiB: Math.round(transferMiB),
    ...(reason ? { reason } : {}),
  };
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
