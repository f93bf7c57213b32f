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
