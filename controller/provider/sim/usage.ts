// CPU demand of a guest over time. A pure function of (seed, VM id, profile, vCPUs, time): no state per
// tick, so the same seed replays the same load and an observation costs one call per VM.

import type { VmConfig } from "../../core/observation.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** An idle guest still ticks: timers, agents, log rotation. A choice: 1 % of its vCPUs. */
export const IDLE_FRACTION = 0.01;
/** Diurnal load swings ±80 % around its mean over the day (a choice: office-hours services). */
export const DIURNAL_AMPLITUDE = 0.8;
/** Diurnal peak, in UTC hours, before each VM's own seeded shift of up to ±2 h (a choice). */
export const DIURNAL_PEAK_HOUR = 14;
/** Bursty load decides per window whether to burst (a choice: 5 min, one DRS pass in vSphere ≤ 6.7). */
export const BURST_WINDOW_MS = 5 * 60_000;
/** Share of windows that burst (a choice). */
export const BURST_PROBABILITY = 0.2;
/** A burst runs at this multiple of the mean, capped at all vCPUs busy (a choice). */
export const BURST_FACTOR = 3;

/**
 * Physical cores the guest wants at time `t`. Its mean over a long time is `cpuPercent` of its vCPUs
 * (except Idle, which ignores it); it never exceeds its vCPUs.
 */
export function cpuDemand(seed: number, vmId: string, config: Pick<VmConfig, "cpu" | "workload">, t: number): number {
  const mean = clamp01(config.workload.cpuPercent / 100);
  return config.cpu * busyFraction(seed, vmId, config.workload.profile, mean, t);
}

function busyFraction(seed: number, vmId: string, profile: VmConfig["workload"]["profile"], mean: number, t: number): number {
  switch (profile) {
    case "Idle":
      return IDLE_FRACTION;
    case "Steady":
      return mean;
    case "Diurnal": {
      const shift = (unitRandom(seed, vmId, 0x6469) * 4 - 2) * HOUR_MS;
      const peak = DIURNAL_PEAK_HOUR * HOUR_MS + shift;
      return clamp01(mean * (1 + DIURNAL_AMPLITUDE * Math.cos((2 * Math.PI * (t - peak)) / DAY_MS)));
    }
    case "Bursty": {
      // Each VM's windows start at its own offset, so a fleet of bursty VMs does not switch in step.
      const offset = Math.floor(unitRandom(seed, vmId, 0x6f66) * BURST_WINDOW_MS);
      const window = Math.floor((t - offset) / BURST_WINDOW_MS);
      const burst = Math.min(1, mean * BURST_FACTOR);
      const base = Math.max(0, (mean - BURST_PROBABILITY * burst) / (1 - BURST_PROBABILITY));
      return unitRandom(seed, vmId, window) < BURST_PROBABILITY ? burst : base;
    }
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/** A deterministic number in [0, 1) from a seed, a VM id and a salt (FNV-1a, then murmur3's finaliser). */
export function unitRandom(seed: number, vmId: string, salt: number): number {
  let h = (0x811c9dc5 ^ (seed | 0)) >>> 0;
  for (let i = 0; i < vmId.length; i++) {
    h ^= vmId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= salt | 0;
  h = Math.imul(h, 0x01000193);
  h ^= Math.floor(salt / 0x100000000) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x100000000;
}
