// Fault tolerance as both sides see it (vSphere FT, BEHAVIOUR.md, Replication and fault tolerance): a
// secondary instance of a VM on another host, made by a live copy and then kept in lockstep over a
// dedicated FT logging link, that goes live within about a second when the primary's host fails, with
// nothing lost and no reboot. A leaf module: the simulator keeps secondaries by it, the planners decide by
// it, the engine reads it.

import type { MigrationSettings } from "./migration.ts";

/** How one VM's secondary is made and kept. */
export interface FaultToleranceSettings {
  /**
   * The FT logging link of each host, MiB/s (BEHAVIOUR.md: a dedicated 10 Gbit/s link, 1,192 MiB/s). The
   * primaries and secondaries of one host share it; a primary whose lockstep needs more than its share is
   * slowed, as vSphere FT slows it.
   */
  loggingBandwidthMiBps: number;
  /** The live copy that makes the secondary follows the migration model, over the logging link. */
  copy: MigrationSettings;
}

/** BEHAVIOUR.md: a dedicated 10 Gbit/s logging link. */
export const DEFAULT_FT_LOGGING_MIBPS = 1_192;

/** BEHAVIOUR.md: at most 4 FT VMs and 8 FT vCPUs per host, at most 8 vCPUs per FT VM. */
export const DEFAULT_FT_LIMITS = Object.freeze({ maxVmsPerHost: 4, maxVcpusPerHost: 8, maxVcpusPerVm: 8 });

/**
 * How long the secondary waits, once the primary stops sending over the logging link, before it tries to
 * go live (the "within about a second"; vSphere's FT heartbeat over the logging link).
 */
export const FT_GO_LIVE_MS = 1_000;

/** The lockstep lag while the link keeps up (fast checkpointing's interval); it grows as the link saturates. */
export const FT_BASE_LAG_MS = 5;

/**
 * Copying: the live copy that makes the secondary runs. Lockstep: the secondary follows the primary and
 * can take over. Failed: it is gone (its host failed, the copy failed, it lost the race to go live);
 * `reason` says why, and the record stays until the VM is protected anew or unprotected.
 */
export type SecondaryState = "Copying" | "Lockstep" | "Failed";

/** One VM's secondary as the hosts report it. */
export interface SecondaryObservation {
  /** The primary's id: the VM's. */
  vm: string;
  /** The protect call's key. */
  key: string;
  /** The secondary's host. */
  host: string;
  /** The primary's host when the secondary was made, or now. */
  primaryHost: string;
  state: SecondaryState;
  /** When it entered its state. */
  since: number;
  /** Copying: memory sent so far and still to send, MiB. */
  copiedMiB?: number;
  remainingMiB?: number;
  /** Lockstep: how far the secondary trails the primary, ms. */
  lagMs?: number;
  /** Lockstep: how much the logging link slows the primary, percent (0 while the link keeps up). */
  slowdownPercent?: number;
  /** Failed: why. */
  reason?: string;
  /** The CPU and memory the secondary holds on its host (the primary's reservation). */
  cpu: number;
  memoryMiB: number;
}

/** A secondary that went live: the VM runs on from `to`, its uptime unbroken. Kept per VM, the last one. */
export interface SwitchoverObservation {
  vm: string;
  from: string;
  to: string;
  /** When the primary stopped (its host failed). */
  primaryLostAt: number;
  /** When the secondary went live. */
  at: number;
}
