// Live migration as both sides see it: the settings a migration runs with, its defaults from the real
// platforms (BEHAVIOUR.md, Live migration), and what a host reports of a migration under way or ended.
// A leaf module: the simulator moves VMs by it, the planners estimate by it, the engine reads it.

import type { VmConfig, WorkloadProfile } from "./observation.ts";

/** How one migration may run (QEMU's migration parameters, KubeVirt's migration configuration). */
export interface MigrationSettings {
  /** QEMU `max-bandwidth`: the most one migration may send, MiB/s. */
  bandwidthMiBps: number;
  /** QEMU `downtime-limit`: switch over once what remains can be sent in this long, ms. */
  downtimeLimitMs: number;
  /** Give up after this many pre-copy rounds (round 0, the full copy, included). */
  maxRounds: number;
  /** KubeVirt: fail a migration whose remaining memory has not shrunk for this long, ms. */
  noProgressTimeoutMs: number;
  /** KubeVirt `completionTimeoutPerGiB`: fail a migration still running after this long per GiB of memory, ms. */
  completionTimeoutPerGiBMs: number;
  /** QEMU auto-converge: throttle the guest's vCPUs while it dirties memory faster than the link sends it. */
  autoConverge: boolean;
}

export const DEFAULT_MIGRATION_SETTINGS: Readonly<MigrationSettings> = Object.freeze({
  // BEHAVIOUR.md, Live migration: QEMU max-bandwidth 128 MiB/s.
  bandwidthMiBps: 128,
  // BEHAVIOUR.md, Live migration: QEMU downtime-limit 300 ms.
  downtimeLimitMs: 300,
  // A choice: QEMU has no round limit of its own (it relies on the timeouts); 30 rounds is far beyond
  // what a workload that converges needs (a few) and stops a hopeless one before the timeouts do.
  maxRounds: 30,
  // BEHAVIOUR.md, Live migration: KubeVirt fails a migration that makes no progress for 150 s.
  noProgressTimeoutMs: 150_000,
  // BEHAVIOUR.md, Live migration: KubeVirt's completion timeout, 800 s per GiB of memory.
  completionTimeoutPerGiBMs: 800_000,
  // BEHAVIOUR.md, Live migration: auto-converge is off by default, as in QEMU.
  autoConverge: false,
});

/** BEHAVIOUR.md, Live migration (QEMU auto-converge): the first throttle, each step, and the ceiling, in percent. */
export const AUTO_CONVERGE = Object.freeze({ initialPercent: 20, incrementPercent: 10, maxPercent: 99, dirtyShareOfSent: 0.5, highRoundsBeforeThrottle: 2 });

/**
 * How fast a guest dirties its memory by workload profile, MiB/s, unless the VM says. A choice, from
 * published measurements (Clark et al. NSDI 2005: writable working sets of tens to a few hundred MiB/s
 * for web and database servers): an idle guest rewrites little, a bursty one (batch, caches) a lot.
 */
export const DIRTY_RATE_MIBPS: Readonly<Record<WorkloadProfile, number>> = Object.freeze({ Idle: 2, Steady: 24, Diurnal: 40, Bursty: 96 });

/** How fast the guest dirties its memory, MiB/s, before any throttle: its own figure, else its profile's. */
export function dirtyRateOf(workload: Readonly<VmConfig["workload"]>): number {
  return workload.dirtyRateMiBps ?? DIRTY_RATE_MIBPS[workload.profile];
}

/**
 * What is wrong with `settings`, naming the field (`bandwidthMiBps must be a positive number`), or
 * undefined when nothing is: every figure positive and finite, the round limit a whole number.
 */
export function migrationSettingsProblem(settings: unknown): string | undefined {
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return "must be an object";
  const fields = settings as Record<string, unknown>;
  for (const name of ["bandwidthMiBps", "downtimeLimitMs", "maxRounds", "noProgressTimeoutMs", "completionTimeoutPerGiBMs"] as const) {
    const value = fields[name];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) return `${name} must be a positive number`;
  }
  if (!Number.isInteger(fields.maxRounds)) return "maxRounds must be a whole number";
  if (typeof fields.autoConverge !== "boolean") return "autoConverge must be true or false";
  return undefined;
}

/**
 * A host's migration link (vMotion network, 10 GbE ≈ 1,192 MiB/s): the migrations leaving or entering a
 * host share it, so running more at once makes each slower. A choice for the simulator's hosts.
 */
export const DEFAULT_MIGRATION_LINK_MIBPS = 1_192;

export type MigrationPhase = "PreCopy" | "Switchover" | "Succeeded" | "Failed" | "Cancelled";

/** One migration as the hosts report it: under way, or ended (kept until the VM's next migration). */
export interface MigrationObservation {
  vm: string;
  /** The requester's key (a VirtualMachineMigration's uid): a second request with the same key is a no-op. */
  key: string;
  source: string;
  target: string;
  phase: MigrationPhase;
  startedAt: number;
  endedAt?: number;
  /** Rounds begun: 1 while round 0 (the full copy) runs. */
  rounds: number;
  transferredMiB: number;
  remainingMiB: number;
  /** What the link gives this migration now, MiB/s. */
  bandwidthMiBps: number;
  /** How fast the guest dirties memory now, after any throttle, MiB/s. */
  dirtyRateMiBps: number;
  /** Auto-converge's throttle on the guest's vCPUs, percent. */
  throttlePercent: number;
  /** How long the guest was paused at switch-over, ms, once it switched over. */
  downtimeMs?: number;
  /** Why it failed or was cancelled. */
  reason?: string;
}
