// Where a VirtualMachineMigration stands, from its cluster's verdict on it and what the hosts report of the
// migration: Pending → Scheduling → PreCopy → Switchover → Succeeded, or Failed / Cancelled with the
// reason; a conversion Pending → ShuttingDown → Converting → Starting → Succeeded, with its pre-check.
// kstatus: Ready when Succeeded, Stalled when Failed or Cancelled, Reconciling otherwise. Pure.

import type { VirtualMachineMigration, VirtualMachineMigrationStatus, MigrationRequestPhase } from "../../api/types.ts";
import { summarize } from "../../api/conditions.ts";
import type { MigrationObservation } from "../../core/migration.ts";
import type { ConversionObservation } from "../../core/conversion.ts";
import type { VmObservation } from "../../core/observation.ts";
import type { RequestVerdict } from "../cluster/types.ts";
import type { ConversionStep, ConversionVerdict } from "../cluster/conversions.ts";

export interface RequestSituation {
  request: Readonly<VirtualMachineMigration>;
  /** Why the request cannot even reach a cluster (its VM or the VM's cluster is missing), if so. */
  orphaned?: string;
  verdict?: RequestVerdict;
  /** The hosts' report of this request's live migration, when there is one. */
  observed?: Readonly<MigrationObservation>;
  /** The hosts' report of this request's conversion, when there is one. */
  conversion?: Readonly<ConversionObservation>;
  /** The VM as its host reports it. */
  instance?: Readonly<VmObservation>;
  now: number;
}

const ENDED: ReadonlySet<MigrationRequestPhase> = new Set(["Succeeded", "Failed", "Cancelled"]);

export function isEnded(phase: MigrationRequestPhase | undefined): boolean {
  return phase !== undefined && ENDED.has(phase);
}

export function requestStatus(s: Readonly<RequestSituation>): VirtualMachineMigrationStatus {
  const previous = s.request.status ?? {};
  const fields = isEnded(previous.phase) ? { ...previous } : progressOf(s, previous);
  const phase = fields.phase ?? "Pending";
  const generation = s.request.metadata.generation;
  const waitingFor = (s.verdict?.kind === "Waiting" || s.verdict?.kind === "Conversion") && phase === "Pending" ? s.verdict.message : undefined;
  // A conversion under way says where it stands in the cluster's words; an ended one, from its status alone.
  const converting = s.verdict?.kind === "Conversion" && !isEnded(phase) && s.verdict.message !== "" ? s.verdict.message : undefined;
  const message = converting ?? messageOf(phase, fields, waitingFor);
  const { conditions: _old, observedGeneration: _gen, ...rest } = fields;
  return {
    ...rest,
    observedGeneration: generation,
    phase,
    conditions: summarize(previous.conditions, {
      ready: phase === "Succeeded",
      reason: phase,
      message,
      ...(phase === "Failed" || phase === "Cancelled" ? { stalled: { reason: phase, message } } : {}),
    }, new Date(s.now).toISOString(), generation),
  };
}

function progressOf(s: Readonly<RequestSituation>, previous: Readonly<VirtualMachineMigrationStatus>): VirtualMachineMigrationStatus {
  const iso = new Date(s.now).toISOString();
  if (s.orphaned) return { phase: "Failed", failureReason: s.orphaned, completionTime: iso };
  if (s.observed) return fromObservation(s.observed, previous);
  const v = s.verdict;
  const keep = { ...(previous.sourceHost ? { sourceHost: previous.sourceHost } : {}), ...(previous.estimate ? { estimate: previous.estimate } : {}) };
  if (!v) return { ...keep, phase: previous.phase ?? "Pending" };
  switch (v.kind) {
    case "Refused": return { ...keep, phase: "Failed", failureReason: v.message, completionTime: iso };
    case "Waiting": return { ...keep, phase: "Pending", ...(v.estimate ? { estimate: v.estimate } : {}) };
    case "Live": return { phase: "Scheduling", sourceHost: v.source, targetHost: v.target, ...(v.estimate ?? previous.estimate ? { estimate: (v.estimate ?? previous.estimate)! } : {}) };
    case "Cancelling": return { ...keep, phase: previous.phase ?? "Pending" };
    case "Cold": return coldOf(s, v, previous, iso);
    case "Conversion": return conversionOf(s, v, previous, iso);
  }
}

/** The phase each step of a conversion shows; a cancellation under way keeps the phase it had. */
const CONVERSION_PHASES: Readonly<Record<ConversionStep, MigrationRequestPhase | undefined>> = {
  Pending: "Pending",
  ShuttingDown: "ShuttingDown",
  Converting: "Converting",
  Starting: "Starting",
  Cancelling: undefined,
  Refused: "Failed",
  Failed: "Failed",
  Succeeded: "Succeeded",
  Cancelled: "Cancelled",
};

/** A conversion: its pre-check always, where it goes, how far the hosts got, and how it ended. */
function conversionOf(s: Readonly<RequestSituation>, v: Readonly<ConversionVerdict>, previous: Readonly<VirtualMachineMigrationStatus>, iso: string): VirtualMachineMigrationStatus {
  const phase = CONVERSION_PHASES[v.step] ?? previous.phase ?? "Pending";
  const ended = isEnded(phase);
  const begun = v.step !== "Pending" && v.step !== "Refused";
  const at = (ms: number) => new Date(ms).toISOString();
  const c = s.conversion;
  const conversion = c
    ? { convertedMiB: Math.round(c.convertedMiB), totalMiB: Math.round(c.totalMiB), startTime: at(c.startedAt), ...(c.phase !== "Converting" ? { completionTime: at(c.endsAt) } : {}) }
    : previous.conversion;
  const startTime = previous.startTime ?? (begun && v.since !== undefined ? at(v.since) : undefined);
  return {
    phase,
    sourceHost: previous.sourceHost ?? v.source,
    ...(v.target !== undefined ? { targetHost: v.target } : previous.targetHost ? { targetHost: previous.targetHost } : {}),
    preCheck: { ...v.preCheck, blockers: [...v.preCheck.blockers], warnings: [...v.preCheck.warnings] },
    ...(conversion ? { conversion: { ...conversion } } : {}),
    ...(startTime ? { startTime } : {}),
    ...(ended ? { completionTime: iso } : {}),
    ...(phase === "Failed" || phase === "Cancelled" ? { failureReason: v.message } : {}),
  };
}

/** A cold move is done once the VM runs again on another host than the one it left. */
function coldOf(s: Readonly<RequestSituation>, v: Extract<RequestVerdict, { kind: "Cold" }>, previous: Readonly<VirtualMachineMigrationStatus>, iso: string): VirtualMachineMigrationStatus {
  const source = previous.sourceHost ?? v.source;
  const where = s.instance?.power === "Running" ? s.instance.host : undefined;
  const base = { sourceHost: source, ...(v.target ?? where ? { targetHost: (v.target ?? where)! } : {}), startTime: previous.startTime ?? iso };
  if (where !== undefined && where !== source) return { ...base, targetHost: where, phase: "Succeeded", completionTime: iso };
  return { ...base, phase: "Switchover" };
}

function fromObservation(m: Readonly<MigrationObservation>, previous: Readonly<VirtualMachineMigrationStatus>): VirtualMachineMigrationStatus {
  const status: VirtualMachineMigrationStatus = {
    phase: m.phase,
    sourceHost: m.source,
    targetHost: m.target,
    ...(previous.estimate ? { estimate: previous.estimate } : {}),
    rounds: m.rounds,
    transferredMiB: Math.round(m.transferredMiB),
    remainingMiB: Math.round(m.remainingMiB),
    startTime: new Date(m.startedAt).toISOString(),
  };
  if (m.downtimeMs !== undefined) status.downtimeMs = Math.round(m.downtimeMs);
  if (m.endedAt !== undefined) status.completionTime = new Date(m.endedAt).toISOString();
  if (m.reason !== undefined && m.phase !== "Succeeded") status.failureReason = m.reason;
  return status;
}

function messageOf(phase: MigrationRequestPhase, s: Readonly<VirtualMachineMigrationStatus>, waitingFor: string | undefined): string {
  switch (phase) {
    case "Pending": return waitingFor ?? "waiting for its cluster's next round";
    case "Scheduling": return `starting: ${s.sourceHost} → ${s.targetHost}`;
    case "PreCopy": return `copying memory ${s.sourceHost} → ${s.targetHost}: round ${s.rounds}, ${s.remainingMiB} MiB to send`;
    case "Switchover": return s.rounds !== undefined ? `switching over to ${s.targetHost}` : `moving cold from ${s.sourceHost}${s.targetHost ? ` to ${s.targetHost}` : ""}`;
    case "Succeeded": return s.preCheck ? `converted ${s.preCheck.from} → ${s.preCheck.to}: on ${s.targetHost}` : `running on ${s.targetHost}${s.downtimeMs !== undefined ? ` after ${s.downtimeMs} ms of downtime` : ""}`;
    case "Failed": return s.failureReason ?? "failed";
    case "Cancelled": return s.failureReason ?? "cancelled: the VM stays where it was";
    case "ShuttingDown": return `shutting down on ${s.sourceHost} to convert it`;
    case "Converting": return `converting for ${s.targetHost ?? "the target"}: ${s.conversion?.convertedMiB ?? 0} of ${s.conversion?.totalMiB ?? 0} MiB`;
    case "Starting": return `starting on ${s.targetHost}`;
  }
}
