// `vireo plan`'s table: the actions per object with their reasons, the VMs no host can take, and the
// drift as a diff (the patch from what the spec implies to what the hosts report).

import type { PlanReport } from "../engine/dry-run.ts";
import { alignColumns } from "./table.ts";

const SIGN = { add: "+", remove: "-", replace: "~" } as const;

export function formatPlan(report: Readonly<PlanReport>): string {
  const sections: string[] = [];
  const name = (o: { kind: string; namespace?: string; name: string }) => `${o.kind} ${o.namespace ? `${o.namespace}/` : ""}${o.name}`;
  if (report.actions.length === 0) sections.push("No actions: Vireo would change nothing now.");
  else {
    sections.push(alignColumns([["OBJECT", "ACTION", "HOST", "REASON"], ...report.actions.map((a) => [name(a), a.action, a.host ?? "", a.reason])]).trimEnd());
  }
  if (report.unschedulable.length > 0) {
    sections.push(alignColumns([["UNSCHEDULABLE", "WHY"], ...report.unschedulable.map((u) => [`VirtualMachine ${u.namespace}/${u.name}`, u.message])]).trimEnd());
  }
  if (report.waiting.length > 0) {
    sections.push(alignColumns([["WAITING", "REASON", "WHY"], ...report.waiting.map((w) => [`VirtualMachine ${w.namespace}/${w.name}`, w.reason, w.message])]).trimEnd());
  }
  if (report.drift.length === 0) sections.push("No drift: the hosts report what the specs imply.");
  for (const d of report.drift) {
    const lines = [`${name(d)}: drifted since ${d.drift.since}`, `  ${d.message}`];
    for (const op of d.drift.operations) lines.push(`  ${SIGN[op.op]} ${op.path}${op.value !== undefined ? ` ${op.value}` : ""}`);
    if (d.drift.count > d.drift.operations.length) lines.push(`  … ${d.drift.count - d.drift.operations.length} more`);
    sections.push(lines.join("\n"));
  }
  const summary = `Plan: ${report.actions.length} action(s), ${report.unschedulable.length} unschedulable, ${report.waiting.length} waiting, ${report.drift.length} object(s) drifted.`;
  return [...sections, summary].join("\n\n");
}
