// kstatus-style conditions (Ready, Reconciling, Stalled, and kind-specific ones), as Flux and `kubectl wait`
// read them. lastTransitionTime moves only when a condition's status changes.

import type { Condition, ConditionStatus } from "./types.ts";

export interface ConditionInput {
  type: string;
  status: ConditionStatus | boolean;
  reason: string;
  message?: string;
}

/**
 * The conditions after this reconcile: each input keeps its previous lastTransitionTime when its status
 * did not change. Conditions not given are dropped, except that an absent Reconciling or Stalled is
 * removed, as kstatus expects (they are "abnormal-true" conditions present only while they hold).
 */
export function nextConditions(
  previous: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  now: string,
  observedGeneration: number | undefined,
): Condition[] {
  return inputs.map((input) => {
    const status: ConditionStatus = typeof input.status === "boolean" ? (input.status ? "True" : "False") : input.status;
    const before = previous?.find((c) => c.type === input.type);
    const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : now;
    const condition: Condition = {
      type: input.type,
      status,
      reason: input.reason,
      message: input.message ?? "",
      lastTransitionTime,
    };
    if (observedGeneration !== undefined) condition.observedGeneration = observedGeneration;
    return condition;
  });
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/**
 * Where one reconcile leaves an object, in the terms every kind shares: reached its desired state or not,
 * why, and whether it is stuck until something changes. The one place kstatus conditions are derived
 * from (as Flux's reconcile summary), so Ready, Reconciling and Stalled mean the same on every kind.
 */
export interface Summary {
  ready: boolean;
  reason: string;
  message: string;
  /** Progress needs a change of spec or of the world (kstatus Stalled); when not ready, Ready carries its reason. */
  stalled?: { reason: string; message: string };
  /** Kind-specific conditions (Placed, Drifted, FailoverCapacity, PolicyConflict, …), after Ready. */
  conditions?: readonly (ConditionInput | undefined)[];
}

/**
 * The kstatus conditions of a summary: Ready; the kind's own; Reconciling while not ready and not stalled;
 * Stalled while stalled. Reconciling and Stalled are absent when false, as kstatus expects.
 */
export function summarize(previous: readonly Condition[] | undefined, summary: Readonly<Summary>, now: string, observedGeneration: number | undefined): Condition[] {
  const stalledReady = summary.stalled && !summary.ready;
  const reason = stalledReady ? summary.stalled!.reason : summary.reason;
  const message = stalledReady ? summary.stalled!.message : summary.message;
  const inputs: ConditionInput[] = [
    { type: "Ready", status: summary.ready, reason, message },
    ...(summary.conditions ?? []).filter((c): c is ConditionInput => c !== undefined),
  ];
  if (!summary.ready && !summary.stalled) inputs.push({ type: "Reconciling", status: true, reason, message });
  if (summary.stalled) inputs.push({ type: "Stalled", status: true, reason: summary.stalled.reason, message: summary.stalled.message });
  return nextConditions(previous, inputs, now, observedGeneration);
}

/** The reason Ready carries while a reconcile keeps failing: the error is in the object's conditions, not only in the log. */
export const RECONCILE_ERROR = "ReconcileError";

/**
 * The conditions of an object whose reconcile threw: Ready False and Reconciling with the error, the
 * kind's other conditions kept as they were. Retried with backoff, so it is not Stalled.
 */
export function reconcileErrorConditions(previous: readonly Condition[] | undefined, error: string, now: string, observedGeneration: number | undefined): Condition[] {
  const message = `reconcile failed, retrying with backoff: ${error}`;
  const kept = (previous ?? []).filter((c) => c.type !== "Ready" && c.type !== "Reconciling" && c.type !== "Stalled");
  return [
    ...nextConditions(previous, [{ type: "Ready", status: false, reason: RECONCILE_ERROR, message }], now, observedGeneration),
    ...kept,
    ...nextConditions(previous, [{ type: "Reconciling", status: true, reason: RECONCILE_ERROR, message }], now, observedGeneration),
  ];
}
