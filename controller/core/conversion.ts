// Moves between hypervisor types (V2V, as virt-v2v and Forklift do them): a cold conversion of a VM that is
// off, its disks rewritten for the target platform and its devices swapped for the target's, at a rate that
// follows the disks' size. A leaf module: the simulator converts by it, the planners check and estimate by
// it, the engine reads it.

import type { Hypervisor } from "../api/types.ts";

/** What the conversion turns the VM into, and how. */
export interface ConversionSettings {
  /** The key of the request: a second call with the same key is a no-op. */
  key: string;
  /** How fast the disks are converted, MiB/s. */
  rateMiBps: number;
}

/** A choice from virt-v2v's figures: about 100 MiB/s reading and rewriting a disk over the network. */
export const DEFAULT_CONVERSION_RATE_MIBPS = 100;

export type ConversionPhase = "Converting" | "Succeeded" | "Failed";

/** One conversion as the hosts report it: under way, or ended (kept, the last one of each VM). */
export interface ConversionObservation {
  vm: string;
  key: string;
  source: string;
  target: string;
  from: Hypervisor;
  to: Hypervisor;
  phase: ConversionPhase;
  startedAt: number;
  /** When it ends (Converting) or ended. */
  endsAt: number;
  totalMiB: number;
  convertedMiB: number;
  reason?: string;
}

/** How long converting `diskMiB` of disks takes at `rateMiBps`, ms (whole ms, rounded up). */
export function conversionMs(diskMiB: number, rateMiBps: number): number {
  return Math.ceil((diskMiB / rateMiBps) * 1000);
}
