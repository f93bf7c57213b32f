// Label selector matching with Kubernetes' meaning (metav1.LabelSelector): matchLabels and every
// matchExpressions requirement are ANDed; an empty selector matches everything.
//
// Selectors reach us after CRD validation, but a malformed requirement must still not match by
// accident: In with no values matches nothing, NotIn with no values excludes nothing, values given to
// Exists/DoesNotExist are ignored, an unknown operator matches nothing.

import type { LabelSelector, LabelSelectorRequirement } from "./types.ts";

export type Labels = Readonly<Record<string, string>>;

/** The value of `key`, reading own properties only (so a label named "constructor" is not a function). */
export function labelValue(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

export function requirementMatches(requirement: Readonly<LabelSelectorRequirement>, labels: Labels): boolean {
  const value = labelValue(labels, requirement.key);
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      // As in Kubernetes: a missing label is "not in" any set.
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    default:
      return false;
  }
}

export function matchLabelsMatch(matchLabels: Readonly<Record<string, string>> | undefined, labels: Labels): boolean {
  if (matchLabels === undefined) return true;
  for (const key in matchLabels) {
    if (!Object.hasOwn(matchLabels, key)) continue;
    if (labelValue(labels, key) !== matchLabels[key]) return false;
  }
  return true;
}

/** Whether `labels` satisfy `selector`: every matchLabels pair and every expression. Empty selector: true. */
export function selectorMatches(selector: Readonly<LabelSelector>, labels: Labels): boolean {
  if (!matchLabelsMatch(selector.matchLabels, labels)) return false;
  const expressions = selector.matchExpressions;
  if (expressions === undefined) return true;
  for (const requirement of expressions) {
    if (!requirementMatches(requirement, labels)) return false;
  }
  return true;
}

/** Whether the selector has no requirement at all (and so matches every label set). */
export function selectorIsEmpty(selector: Readonly<LabelSelector>): boolean {
  const labelCount = selector.matchLabels === undefined ? 0 : Object.keys(selector.matchLabels).length;
  return labelCount === 0 && (selector.matchExpressions?.length ?? 0) === 0;
}

/**
 * A canonical text for the selector: two selectors with the same signature match exactly the same label
 * sets, whatever the order of their keys, expressions or values. Used to share work between equal selectors.
 */
export function selectorSignature(selector: Readonly<LabelSelector>): string {
  const labels = Object.keys(selector.matchLabels ?? {})
    .sort(byCodeUnits)
    .map((key) => [key, selector.matchLabels?.[key] ?? ""]);
  const expressions = (selector.matchExpressions ?? [])
    .map((r) => [r.key, r.operator, ...dedupe(r.values ?? []).sort(byCodeUnits)])
    .map((parts) => JSON.stringify(parts))
    .sort(byCodeUnits);
  return JSON.stringify([labels, dedupe(expressions)]);
}

/** Orders strings by UTF-16 code units: the same everywhere, unlike localeCompare. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}
