// The run's summary as a person reads it in a terminal: what the scenario did, then how long each VM was
// down and how each priority fared, what never came back and why, migrations, RPO, peak use and imbalance,
// and split-brain attempts.

import type { RunResult } from "./run.ts";
import type { RunSummary, VmLeftDown } from "./results.ts";
import { describeDuration } from "./durations.ts";

export function formatSummary(result: Readonly<RunResult>): string {
  const { scenario, summary } = result;
  const lines: string[] = [];
  lines.push(`Scenario ${scenario.name} (${scenario.file}, seed ${scenario.seed}): ${describeDuration(scenario.durationSeconds * 1000)} from ${scenario.start}`);
  if (scenario.description) lines.push(`  ${scenario.description}`);
  lines.push("", "Timeline");
  if (scenario.steps.length === 0) lines.push("  (no steps: the fleet alone)");
  lines.push(...indent(table(["AT", "STEP", "NOTE"], scenario.steps.map((s) => [at(s.at), s.summary, s.note ?? ""]))));
  lines.push("", ...recoverySection(summary));
  lines.push("", ...leftDownSection("Never came back", summary.notRecovered, "every VM that went down came back"));
  if (summary.notRunning.length > 0) lines.push("", ...leftDownSection("Not running at the end (never placed, or stopped and not started again)", summary.notRunning, ""));
  if (summary.arrivals.length > 0) lines.push("", ...arrivalSection(summary));
  lines.push("", ...migrationSection(summary));
  lines.push("", ...rpoSection(summary));
  lines.push("", ...capacitySection(summary));
  lines.push("", `Split-brain attempts: ${summary.splitBrainAttempts}${summary.splitBrainAttempts === 0 ? "" : "  (must be 0: a VM was started while another copy might still run)"}`);
  return lines.join("\n");
}

function recoverySection(summary: Readonly<RunSummary>): string[] {
  const wentDown = summary.recoveries.length + summary.notRecovered.length;
  const lines = [`Recovery: ${wentDown} VM outage(s), ${summary.recoveries.length} recovered (running and Ready again)`];
  if (summary.recoveries.length === 0) return lines;
  lines.push(...indent(table(["VM", "PRIORITY", "CAUSE", "FROM", "TO", "DOWN", "BACK", "RECOVERY"],
    summary.recoveries.map((r) => [r.vm, r.priority, r.cause, r.fromHost, r.toHost, at(r.downAt), at(r.recoveredAt), describeDuration(r.seconds * 1000)]))));
  lines.push("", "By priority");
  lines.push(...indent(table(["PRIORITY", "VMS", "MEDIAN", "MAX"], summary.byPriority.map((p) => [p.priority, String(p.count), describeDuration(p.medianSeconds * 1000), describeDuration(p.maxSeconds * 1000)]))));
  return lines;
}

function leftDownSection(title: string, vms: readonly VmLeftDown[], none: string): string[] {
  if (vms.length === 0) return [`${title}: none${none ? ` (${none})` : ""}`];
  return [`${title}: ${vms.length}`, ...indent(table(["VM", "PRIORITY", "DOWN", "PHASE", "READY", "WHY"],
    vms.map((v) => [v.vm, v.priority, v.downAt === undefined ? "" : `${at(v.downAt)} (${v.cause ?? ""})`, v.phase, `${v.ready.status} ${v.ready.reason}`, v.ready.message])))];
}

function arrivalSection(summary: Readonly<RunSummary>): string[] {
  const waiting = summary.arrivals.filter((a) => a.readyAt === undefined).length;
  return [`Arrivals: ${summary.arrivals.length} lab(s) and VM(s) arrived, ${waiting === 0 ? "all Ready" : `${waiting} never Ready`}`,
    ...indent(table(["OBJECT", "ARRIVED", "READY", "AFTER", "WAITED FOR"], summary.arrivals.map((a) => [
      a.object, at(a.arrivedAt), a.readyAt === undefined ? "never" : at(a.readyAt), a.seconds === undefined ? "" : describeDuration(a.seconds * 1000), a.waitedFor ?? "",
    ])))];
}

function migrationSection(summary: Readonly<RunSummary>): string[] {
  const t = summary.migrationTotals;
  if (summary.migrations.length === 0) return ["Migrations: none"];
  const lines = [`Migrations: ${summary.migrations.length} (${t.succeeded} succeeded, ${t.failed} failed, ${t.cancelled} cancelled${t.unfinished ? `, ${t.unfinished} still under way` : ""}); downtime mean ${t.meanDowntimeMs} ms, max ${t.maxDowntimeMs} ms`];
  lines.push(...indent(table(["VM", "FROM", "TO", "WHY", "RESULT", "STARTED", "TOOK", "DOWNTIME", "REASON"], summary.migrations.map((m) => [
    m.vm, m.source, m.target, m.why, m.phase, at(m.startedAt), m.endedAt === undefined ? "" : describeDuration((m.endedAt - m.startedAt) * 1000),
    m.downtimeMs === undefined ? "" : `${m.downtimeMs} ms`, m.reason ?? "",
  ]))));
  return lines;
}

function rpoSection(summary: Readonly<RunSummary>): string[] {
  if (summary.rpo.length === 0) return ["RPO: no replicated VMs"];
  const missed = summary.rpo.filter((r) => !r.met).length;
  return [`RPO: ${summary.rpo.length} replicated VM(s), ${missed === 0 ? "every RPO met" : `${missed} missed their RPO`}`,
    ...indent(table(["VM", "RPO", "MAX LAG", "MET"], summary.rpo.map((r) => [r.vm, describeDuration(r.rpoSeconds * 1000), describeDuration(r.maxLagSeconds * 1000), r.met ? "yes" : "NO"])))];
}

function capacitySection(summary: Readonly<RunSummary>): string[] {
  const { cpu, memory } = summary.peakUtilization;
  const lines = [`Peak host use: CPU ${cpu ? `${cpu.percent}% on ${cpu.host} at ${at(cpu.t)}` : "n/a"}; memory allocated ${memory ? `${memory.percent}% on ${memory.host} at ${at(memory.t)}` : "n/a"}`];
  const clusters = summary.imbalance.filter((i) => i.peak > 0);
  if (clusters.length > 0) lines.push(`Imbalance (std. dev. of host load): ${clusters.map((i) => `${i.cluster} peak ${i.peak} at ${at(i.peakAt)}, end ${i.end ?? "n/a"}`).join("; ")}`);
  return lines;
}

/** `+1h30m`: a time of the run, from its start. */
function at(seconds: number): string {
  return seconds === 0 ? "+0s" : `+${describeDuration(seconds * 1000)}`;
}

function indent(lines: readonly string[]): string[] {
  return lines.map((l) => `  ${l}`);
}

/** Columns padded to their widest cell, three spaces apart, as kubectl prints tables. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return [];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join("").trimEnd());
}
