// `vireo plan`'s table: the actions per object with their reasons, the VMs no host can take, the migrations
// asked for with what is expected of them (a conversion's pre-check: what refuses it, what will not survive
// it, how long it takes), and the drift as a diff (the patch from what the spec implies to what the hosts
// report).

import type { PlanReport, PlannedMigration } from "../engine/dry-run.ts";
import { alignColumns } from "./table.ts";

const SIGN = { add: "+", remove: "-", replace: "~" } as const;

export function formatPlan(report: Readonly<PlanReport>): string {
  const sections: string[] = [];
  const name = (o: { kind: string; namespace?: string; name: string }) => `${o.kind} ${o.namespace ? `${o.namespace}/` : ""}${o.name}`;
  if (report.actions.length === 0) sections.push("No actions: Vireo would change nothing now.");
  else {
    sections.push(alignColumns([["OBJECT", "ACTION", "HOST", "REASON"], ...report.actions.map((a) => [name(a), a.action, a.host ?? "", a.reason])]).trimEnd());
  }
  sections.push(...heldBack(report));
  if (report.drift.length === 0) sections.push("No drift: the hosts report what the specs imply.");
  for (const d of report.drift) {
    const lines = [`${name(d)}: drifted since ${d.drift.since}`, `  ${d.message}`];
    for (const op of d.drift.operations) lines.push(`  ${SIGN[op.op]} ${op.path}${op.value !== undefined ? ` ${op.value}` : ""}`);
    if (d.drift.count > d.drift.operations.length) lines.push(`  … ${d.drift.count - d.drift.operations.length} more`);
    sections.push(lines.join("\n"));
  }
  const migrations = report.migrations.length > 0 ? `, ${report.migrations.length} migration(s) pending` : "";
  const summary = `Plan: ${report.actions.length} action(s), ${report.unschedulable.length} unschedulable, ${report.waiting.length} waiting${migrations}, ${report.drift.length} object(s) drifted.`;
  return [...sections, summary].join("\n\n");
}

/** The VMs no host can take, those the cluster holds back, and the migrations asked for: the sections that have rows. */
function heldBack(report: Readonly<PlanReport>): string[] {
  const sections: string[] = [];
  if (report.unschedulable.length > 0) {
    sections.push(alignColumns([["UNSCHEDULABLE", "WHY"], ...report.unschedulable.map((u) => [`VirtualMachine ${u.namespace}/${u.name}`, u.message])]).trimEnd());
  }
  if (report.waiting.length > 0) {
    sections.push(alignColumns([["WAITING", "REASON", "WHY"], ...report.waiting.map((w) => [`VirtualMachine ${w.namespace}/${w.name}`, w.reason, w.message])]).trimEnd());
  }
  if (report.migrations.length > 0) sections.push(migrationsTable(report.migrations));
  for (const m of report.migrations) if (m.preCheck) sections.push(preCheckOf(m));
  return sections;
}

/** A conversion's pre-check: from and to, the disks and the expected time, then each blocker and warning. */
function preCheckOf(m: Readonly<PlannedMigration>): string {
  const p = m.preCheck!;
  const verdict = p.blockers.length > 0 ? "refused" : "passes";
  const lines = [`Pre-check of VirtualMachineMigration ${m.namespace}/${m.name} (${m.namespace}/${m.vm}, ${p.from} → ${p.to}): ${verdict}; ${Math.round(p.diskMiB)} MiB of disks, ~${formatSeconds(p.estimatedSeconds)} to convert`];
  for (const b of p.blockers) lines.push(`  blocker: ${b}`);
  for (const w of p.warnings) lines.push(`  warning: ${w}`);
  return lines.join("\n");
}

function formatSeconds(seconds: number): string {
  if (seconds < 600) return `${Math.ceil(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function migrationsTable(migrations: readonly PlannedMigration[]): string {
  const rows = migrations.map((m) => [`VirtualMachineMigration ${m.namespace}/${m.name}`, `${m.namespace}/${m.vm}`, m.target ?? "(placement chooses)", expected(m)]);
  return alignColumns([["MIGRATION", "VM", "TARGET", "EXPECTED"], ...rows]).trimEnd();
}

/** What a migration comes to: how it stands this round, then the estimate of its live copy. */
function expected(m: Readonly<PlannedMigration>): string {
  const e = m.estimate;
  if (!e) return standing(m);
  const estimate = e.converges ? `${e.rounds} rounds, ~${e.downtimeMs} ms downtime, ~${e.durationSeconds} s` : `no convergence expected: ${e.reason ?? "memory is dirtied faster than it is sent"}`;
  return `${standing(m)}; ${estimate}`;
}

const STANDING: Record<PlannedMigration["verdict"], string> = { Live: "", Waiting: "waits", Cold: "cold", Refused: "fails", Cancelling: "cancelled", Conversion: "converts" };

/** "starts now" or the phase of a live copy under way; otherwise the verdict and its reason. */
function standing(m: Readonly<PlannedMigration>): string {
  if (m.verdict === "Live") return m.phase === "Pending" ? "starts now" : m.phase;
  if (m.verdict === "Conversion" && m.preCheck?.blockers.length) return `fails its pre-check: ${m.message ?? ""}`;
  return `${STANDING[m.verdict]}: ${m.message ?? ""}`;
}
