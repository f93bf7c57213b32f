// Live migrations as metrics, from what the hosts report after every observation: each migration that
// ends is counted once, by result and by a reason from a small fixed set, with its duration and downtime;
// the ones under way are gauged with their age, so an alert can name a migration that has run too long.

import type { MigrationObservation, MigrationPhase } from "../core/migration.ts";
import type { ControllerMetrics } from "./metrics.ts";

export type MigrationResult = Extract<MigrationPhase, "Succeeded" | "Failed" | "Cancelled">;

/**
 * The reasons `vireo_migrations_total` counts a migration under, by result — a fixed set, so the label stays
 * bounded whatever a host says. Failed: the pre-copy gave up at its round limit, made no progress, or ran
 * past its completion timeout; the source or the target failed (crashed, lost its network, or could not
 * open the VM's disks). Cancelled: on request (its VirtualMachineMigration deleted while it ran), or because
 * the VM stopped running on its source. Anything else is Other. docs/metrics.md lists them.
 */
export const MIGRATION_REASONS: Readonly<Record<MigrationResult, readonly string[]>> = Object.freeze({
  Succeeded: ["Completed"],
  Failed: ["RoundLimit", "NoProgress", "CompletionTimeout", "SourceFailed", "TargetFailed", "Other"],
  Cancelled: ["Requested", "VmStopped", "Other"],
});

/** What a host says when it cancels a migration, and when pre-copy gives up: the phrases and their reasons. */
const CANCELLED: readonly (readonly [RegExp, string])[] = [[/^cancelled on request/, "Requested"], [/^the VM (left|was) /, "VmStopped"]];
const GAVE_UP: readonly (readonly [RegExp, string])[] = [[/^did not converge in /, "RoundLimit"], [/^no progress for /, "NoProgress"], [/^not done within the completion timeout /, "CompletionTimeout"]];
/** A host that failed the migration, named by its role or by its name. */
const HOST_FAILED = /^(?:the connection to (source|target) host \S+ was lost|host (\S+) (?:lost its network|cannot reach datastore))/;

/** The reason label of an ended migration, from the host's own words (the simulator's migrations.ts and precopy.ts). */
export function migrationReason(m: Readonly<Pick<MigrationObservation, "phase" | "source" | "target" | "reason">>): string {
  if (m.phase === "Succeeded") return "Completed";
  const text = m.reason ?? "";
  const phrases = m.phase === "Cancelled" ? CANCELLED : GAVE_UP;
  const known = phrases.find(([pattern]) => pattern.test(text));
  if (known) return known[1];
  const role = m.phase === "Failed" ? failedHost(text, m) : undefined;
  return role === "source" ? "SourceFailed" : role === "target" ? "TargetFailed" : "Other";
}

function failedHost(text: string, m: Readonly<Pick<MigrationObservation, "source" | "target">>): "source" | "target" | undefined {
  const failed = HOST_FAILED.exec(text);
  if (!failed) return undefined;
  if (failed[1] !== undefined) return failed[1] as "source" | "target";
  if (failed[2] === m.source) return "source";
  return failed[2] === m.target ? "target" : undefined;
}

function isUnderWay(m: Readonly<MigrationObservation>): boolean {
  return m.phase === "PreCopy" || m.phase === "Switchover";
}

/**
 * Turns successive observations into the migration metrics. A migration is counted when this process sees
 * it end: under way in one observation and ended in the next, or ended, unseen before, after the previous
 * observation (one that began and ended between two). So it is counted once however many observations
 * still report it, and a controller that starts (or restarts) counts none of the migrations that had
 * already ended: its first observation only sets the baseline.
 */
export class MigrationRecorder {
  private readonly metrics: ControllerMetrics;
  /** The previous observation's migrations: by VM, the key and whether it was under way. */
  private previous = new Map<string, { key: string; underWay: boolean }>();
  private previousAt: number | undefined;

  constructor(metrics: ControllerMetrics) {
    this.metrics = metrics;
  }

  /** Takes the migrations the hosts reported at `at` (their clock, ms). */
  record(migrations: readonly Readonly<MigrationObservation>[], at: number): void {
    const current = new Map<string, { key: string; underWay: boolean }>();
    let inFlight = 0;
    this.metrics.migrationInProgress.reset();
    for (const m of migrations) {
      const underWay = isUnderWay(m);
      current.set(m.vm, { key: m.key, underWay });
      if (underWay) {
        inFlight++;
        const [namespace, name] = splitId(m.vm);
        this.metrics.migrationInProgress.set({ namespace, name, source: m.source, target: m.target }, Math.max(0, at - m.startedAt) / 1000);
      } else if (this.endedNow(m)) {
        this.count(m);
      }
    }
    this.metrics.migrationsInFlight.set(inFlight);
    this.previous = current;
    this.previousAt = at;
  }

  private endedNow(m: Readonly<MigrationObservation>): boolean {
    if (this.previousAt === undefined) return false;
    const before = this.previous.get(m.vm);
    if (before?.key === m.key) return before.underWay;
    return m.endedAt !== undefined && m.endedAt > this.previousAt;
  }

  private count(m: Readonly<MigrationObservation>): void {
    const result = m.phase as MigrationResult;
    this.metrics.migrations.inc({ result, reason: migrationReason(m) });
    if (m.endedAt !== undefined) this.metrics.migrationDuration.observe({ result }, Math.max(0, m.endedAt - m.startedAt) / 1000);
    if (result === "Succeeded" && m.downtimeMs !== undefined) this.metrics.migrationDowntime.observe(m.downtimeMs / 1000);
  }
}

function splitId(id: string): [namespace: string, name: string] {
  const slash = id.indexOf("/");
  return slash < 0 ? ["default", id] : [id.slice(0, slash), id.slice(slash + 1)];
}
