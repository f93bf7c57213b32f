// Hold-down after a balancing move (BEHAVIOUR.md, Balancing — the OpenShift descheduler's KubeVirt plug-in):
// a VM just moved stays put 15 min, twice as long for each further move within 24 h, at most 6 h. It keeps a
// VM from being moved back and forth while its load settles, whatever the next pass measures.

import type { HoldDown } from "../cluster/types.ts";

const MINUTE = 60_000;
export const HOLD_DOWN_MS = 15 * MINUTE;
export const HOLD_DOWN_MAX_MS = 6 * 60 * MINUTE;
/** Moves further apart than this start the doubling afresh. */
export const HOLD_DOWN_MEMORY_MS = 24 * 60 * MINUTE;

/** Whether the VM may not be moved by balancing now. */
export function heldDown(record: Readonly<HoldDown> | undefined, now: number): boolean {
  return record !== undefined && record.until > now;
}

/** The hold-down of a VM moved at `now`, given its previous one. */
export function holdDownAfterMove(previous: Readonly<HoldDown> | undefined, now: number): HoldDown {
  const moves = previous !== undefined && now - previous.lastMoveAt < HOLD_DOWN_MEMORY_MS ? previous.moves + 1 : 1;
  const duration = Math.min(HOLD_DOWN_MS * 2 ** (moves - 1), HOLD_DOWN_MAX_MS);
  return { moves, lastMoveAt: now, until: now + duration };
}

/** The hold-downs still worth remembering at `now`: held, or moved within the last 24 h (they count for doubling). */
export function liveHoldDowns(holdDowns: ReadonlyMap<string, HoldDown>, now: number): Map<string, HoldDown> {
  const kept = new Map<string, HoldDown>();
  for (const [vm, record] of holdDowns) {
    if (record.until > now || now - record.lastMoveAt < HOLD_DOWN_MEMORY_MS) kept.set(vm, record);
  }
  return kept;
}
