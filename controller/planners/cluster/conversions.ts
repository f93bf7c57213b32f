// Requested moves to another hypervisor type (V2V), always cold: the pre-check, then the VM shut down on its
// source, converted for a host of the target type (core/conversion.ts), and started there. The first stage
// of the cluster's round carries the conversions under way, so that no later stage (HA restarts, placement,
// evacuation, balancing) starts or moves a VM that is being converted; the "migrations" stage judges the
// new requests (conversion-requests.ts). docs/migration.md, "Moves between hypervisor types", tells the story.
//
// Deleting a request before its conversion began cancels it: the VM is started again where it was, as the
// guest's shutdown cannot be taken back. Once the hosts convert it, it runs to the end (the provider has no
// call to stop a conversion), and the VM starts on the target, as Forklift carries a migration on after its
// cut-over.

import type { ConversionPreCheck, Hypervisor, VirtualMachineMigration, VmStatusNetwork } from "../../api/types.ts";
import { byCodeUnits } from "../../api/selectors.ts";
import { DEFAULT_CONVERSION_RATE_MIBPS } from "../../core/conversion.ts";
import type { ConversionObservation } from "../../core/conversion.ts";
import type { VmConfig } from "../../core/observation.ts";
import { hostsThatFit, requestOf } from "../../placement/index.ts";
import { placedVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import { desiredPower } from "../run-strategy.ts";
import { convertedConfig, renewedMacs, sameMacs } from "../migration/conversion-config.ts";
import { requestKey, requestName, requestVm } from "../migration/requests.ts";
import type { ClusterSituation, RequestVerdict, StageState, VmFacts } from "./types.ts";

/**
 * Where a conversion stands. Pending: judged possible, waiting (room on the target, a slot, the VM to settle).
 * ShuttingDown, Converting, Starting: under way. Cancelling: deleted before the conversion began, the VM on
 * its way back up where it was. Refused (by the pre-check, nothing touched), Failed, Succeeded, Cancelled: ended.
 */
export type ConversionStep = "Pending" | "ShuttingDown" | "Converting" | "Starting" | "Cancelling" | "Refused" | "Failed" | "Succeeded" | "Cancelled";

/** The planner's word on a VirtualMachineMigration that converts its VM. */
export interface ConversionVerdict {
  kind: "Conversion";
  step: ConversionStep;
  /** The request's key: the conversion's, as the hosts report it. */
  key: string;
  /** The VM's id. */
  vm: string;
  from: Hypervisor;
  to: Hypervisor;
  /** The host the VM was on when the request was judged. */
  source: string;
  /** The host of type `to` it goes to, once chosen. */
  target?: string;
  preCheck: ConversionPreCheck;
  message: string;
  /** When the VM was asked to shut down, or its conversion asked for when it was off (ms). */
  since?: number;
  /** When the hosts were first asked to convert it (ms). */
  convertAskedAt?: number;
  /** Whether it ran when the request was judged: a Manual VM runs again on the target only then. */
  powerOn?: boolean;
  /** The MACs its NICs take on the target, when the request gives up the old ones. */
  macs?: VmStatusNetwork[];
  /** The hosts' refusal of the last Convert call (the engine notes it): the next round ends the conversion. */
  refused?: string;
}

/** One conversion's turn in a round: the cluster, the stages' state, its VM, how the last round left it, its request (gone: undefined). */
export interface Turn {
  s: Readonly<ClusterSituation>;
  state: StageState;
  f: Readonly<VmFacts>;
  before: ConversionVerdict;
  request: Readonly<VirtualMachineMigration> | undefined;
}

const UNDER_WAY: ReadonlySet<ConversionStep> = new Set(["ShuttingDown", "Converting", "Starting", "Cancelling"]);
const ENDED: ReadonlySet<ConversionStep> = new Set(["Refused", "Failed", "Succeeded", "Cancelled"]);
const RESUMABLE_PHASES: ReadonlySet<string> = new Set(["ShuttingDown", "Converting", "Starting"]);

/** A VM still running this long after it was asked to shut down is asked again (the first call may not have reached its host). */
const ASK_AGAIN_MS = 5_000;
/** How long the hosts may take to begin a conversion asked for before it is given up and the VM started again where it was. */
export const CONVERT_START_TIMEOUT_MS = 120_000;
/** A conversion asked for is looked at again this soon: the hosts' report of it, or their refusal, is due. */
const CONVERT_LOOK_AGAIN_MS = 2_000;

export function isUnderWay(verdict: RequestVerdict | undefined): boolean {
  return verdict?.kind === "Conversion" && UNDER_WAY.has(verdict.step);
}

// ------------------------------------------------------------------ the first stage: conversions under way

/** Carries every conversion under way one step on, holding its VM; finishes what the hosts converted for a request gone. */
export function conversionsStage(s: Readonly<ClusterSituation>, state: StageState): void {
  const covered = new Set<string>();
  for (const request of [...s.requests].sort((a, b) => byCodeUnits(requestName(a), requestName(b)))) {
    const before = underWay(s, request);
    if (!before) continue;
    covered.add(before.key);
    state.requestVerdicts.set(requestName(request), nextOf(s, state, before, request));
  }
  carryDeleted(s, state, covered);
  for (const c of s.conversions ?? []) if (!covered.has(c.key)) finishUnclaimed(s, state, c);
}

/** An ended verdict stays until the request's status says so; a VM gone ends its conversion. */
function nextOf(s: Readonly<ClusterSituation>, state: StageState, before: ConversionVerdict, request: Readonly<VirtualMachineMigration>): ConversionVerdict {
  if (ENDED.has(before.step)) return before;
  const f = s.vms.find((v) => v.id === before.vm);
  return f ? advance({ s, state, f, before, request }) : { ...before, step: "Failed", message: `VirtualMachine ${before.vm} is gone` };
}

/** A request deleted (in the file mode, gone at once) while its conversion was under way: carried on from its last verdict. */
function carryDeleted(s: Readonly<ClusterSituation>, state: StageState, covered: Set<string>): void {
  const present = new Set(s.requests.map(requestName));
  for (const [name, before] of s.previousRequests ?? []) {
    if (present.has(name) || before.kind !== "Conversion" || !UNDER_WAY.has(before.step)) continue;
    covered.add(before.key);
    const f = s.vms.find((v) => v.id === before.vm);
    const next = f ? advance({ s, state, f, before, request: undefined }) : undefined;
    if (next && UNDER_WAY.has(next.step)) state.requestVerdicts.set(name, next);
  }
}

/** The request's conversion under way or just ended: as the last round left it, or as the hosts and its status tell after a restart. */
function underWay(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>): ConversionVerdict | undefined {
  const before = s.previousRequests?.get(requestName(request));
  if (before?.kind === "Conversion" && before.step !== "Pending") return before;
  const key = requestKey(request);
  const c = s.conversions?.find((x) => x.vm === requestVm(request) && x.key === key);
  return c ? fromReport(request, c) : fromStatus(request);
}

function fromReport(request: Readonly<VirtualMachineMigration>, c: Readonly<ConversionObservation>): ConversionVerdict {
  const status = request.status;
  const preCheck = status?.preCheck ?? { from: c.from, to: c.to, blockers: [], warnings: [], estimatedSeconds: (c.endsAt - c.startedAt) / 1000, diskMiB: c.totalMiB };
  const since = status?.startTime ? Date.parse(status.startTime) : c.startedAt;
  return { kind: "Conversion", step: "Converting", key: c.key, vm: c.vm, from: c.from, to: c.to, source: c.source, target: c.target, preCheck, message: "", since };
}

function fromStatus(request: Readonly<VirtualMachineMigration>): ConversionVerdict | undefined {
  const status = request.status;
  if (!status?.preCheck || !status.sourceHost || !RESUMABLE_PHASES.has(status.phase ?? "")) return undefined;
  const { from, to } = status.preCheck;
  return {
    kind: "Conversion",
    step: status.phase as ConversionStep,
    key: requestKey(request),
    vm: requestVm(request),
    from,
    to,
    source: status.sourceHost,
    ...(status.targetHost ? { target: status.targetHost } : {}),
    preCheck: status.preCheck,
    message: "",
    ...(status.startTime ? { since: Date.parse(status.startTime) } : {}),
  };
}

function advance(t: Turn): ConversionVerdict {
  const c = t.s.conversions?.find((x) => x.vm === t.f.id && x.key === t.before.key);
  if (c) return reported(t, c);
  const deleted = t.request === undefined || t.request.metadata.deletionTimestamp !== undefined;
  switch (t.before.step) {
    case "ShuttingDown": return deleted ? cancel(t) : shuttingDown(t);
    case "Cancelling": return cancel(t);
    case "Converting": return convert(t);
    default: return landed(t);
  }
}

/** The guest shuts down on its source; once it is off, the hosts are asked to convert it. */
function shuttingDown(t: Turn): ConversionVerdict {
  const { f, before } = t;
  const i = f.instance;
  if (!i || i.host !== before.source) return { ...before, step: "Failed", message: `the VM left host ${before.source} while it shut down${i ? ` and is on ${i.host} now` : ""}: nothing was converted` };
  if (i.power === "Off") return convert(t);
  if (i.power !== "Stopping" && t.s.now - (before.since ?? t.s.now) >= ASK_AGAIN_MS) shutDown(t.state, f, before);
  const message = `shutting down on ${before.source} to be converted for ${before.to} on ${before.target}`;
  hold(t.state, f, { target: before.target ?? before.source, message, reserve: true });
  return { ...before, step: "ShuttingDown", message };
}

/** The VM is off on its source: the hosts convert it (asked again each round until they report it, under the same key). */
export function convert(t: Turn): ConversionVerdict {
  const { s, f, before } = t;
  const stopped = notOffAtSource(t);
  if (stopped !== undefined) return { ...before, step: "Failed", message: stopped };
  const askedAt = before.convertAskedAt ?? s.now;
  const target = s.hosts.find((h) => h.name === before.target)?.host;
  const why = notBegun(t, askedAt);
  if (why !== undefined) return fail(t, why);
  if (!target) return fail(t, `its target host ${before.target ?? "(none)"} is gone`);
  const macs = before.macs ?? (t.request?.spec.keepMacAddresses === false ? renewedMacs(f.vm, f.networks, takenMacs(s, f)) : undefined);
  const config = convertedConfig(f.vm, macs ?? f.networks, s.cluster, target, before.to, { isolationResponse: f.protection.isolationResponse });
  const reason = `${describeRequest(before)}: converting it for ${before.to}`;
  t.state.actions.push({ stage: "migrations", action: { type: "Convert", vm: f.id, target: target.metadata.name, config, settings: { key: before.key, rateMiBps: DEFAULT_CONVERSION_RATE_MIBPS }, reason } });
  const message = `asked the hosts to convert it for ${before.to} on ${target.metadata.name}`;
  hold(t.state, f, { target: target.metadata.name, message, reserve: true });
  t.state.wakeAt = Math.min(t.state.wakeAt ?? Infinity, s.now + CONVERT_LOOK_AGAIN_MS);
  return { ...before, step: "Converting", convertAskedAt: askedAt, ...(macs ? { macs } : {}), message };
}

/** Why the hosts have not begun converting it and will not: they refused, or they took too long. */
function notBegun(t: Turn, askedAt: number): string | undefined {
  if (t.before.refused !== undefined) return `the hosts refused to convert it: ${t.before.refused}`;
  if (t.s.now - askedAt >= CONVERT_START_TIMEOUT_MS) return `the hosts did not begin converting it within ${CONVERT_START_TIMEOUT_MS / 1000} s`;
  return undefined;
}

/** Why the VM is not off on its source, where its conversion would begin, if it is not: nothing was converted. */
function notOffAtSource(t: Turn): string | undefined {
  const i = t.f.instance;
  const source = t.before.source;
  if (!i || i.host !== source) return `the VM left host ${source} before its conversion began${i ? ` and is on ${i.host} now` : ""}: nothing was converted`;
  return i.power === "Off" ? undefined : `the VM was powered on on ${source} before its conversion began: nothing was converted`;
}

/** What the hosts report of the conversion. */
function reported(t: Turn, c: Readonly<ConversionObservation>): ConversionVerdict {
  const now: Turn = { ...t, before: { ...t.before, source: c.source, target: c.target } };
  switch (c.phase) {
    case "Converting": {
      const message = `converting for ${c.to} on ${c.target}: ${Math.round(c.convertedMiB)} of ${Math.round(c.totalMiB)} MiB`;
      hold(t.state, t.f, { target: c.target, message, reserve: true });
      return { ...now.before, step: "Converting", message };
    }
    case "Failed": return fail(now, `the conversion failed: ${c.reason ?? "the hosts gave no reason"}`);
    case "Succeeded": return landed(now);
  }
}

/** Converted, the VM is registered off on the target: it takes on its new MACs, if it gets any, and starts there. */
function landed(t: Turn): ConversionVerdict {
  const { f, before } = t;
  const i = f.instance;
  const target = before.target ?? "";
  const done = `converted ${before.from} → ${before.to}`;
  if (!i) return { ...before, step: "Failed", message: `${done}, but no host reports the VM any more` };
  if (i.host !== target) return { ...before, step: i.power === "Off" ? "Failed" : "Succeeded", message: `${done}; the VM is on host ${i.host} now` };
  if (i.power === "Running") return { ...before, step: "Succeeded", message: `${done}: running on ${target}` };
  if (i.power !== "Off") return { ...before, step: "Starting", message: `${done}: starting on ${i.host}` };
  if (t.request?.spec.keepMacAddresses === false && !sameMacs(i.config.nics, f.networks)) {
    const message = `${done}: taking on its new MAC addresses before it starts on ${target}`;
    hold(t.state, f, { target, message, reserve: true });
    return { ...before, step: "Converting", message };
  }
  if (!wantsOn(f, before)) return { ...before, step: "Succeeded", message: `${done}: registered on ${target}, off as its runStrategy asks` };
  const where = startOfType(t.s, t.state, f, { preferred: target, type: before.to, converted: true, reason: `${describeRequest(before)}: starting it, converted for ${before.to}` });
  if (where !== undefined) return { ...before, step: "Starting", message: `${done}: starting on ${where}` };
  const message = `${done}: waiting for a ${before.to} host to take it (host ${target} cannot now)`;
  hold(t.state, f, { target, message });
  return { ...before, step: "Starting", message };
}

/** The conversion ends before the VM reached the target: it starts again where it was, unconverted. */
function fail(t: Turn, why: string): ConversionVerdict {
  const back = restartUnconverted(t);
  return { ...t.before, step: "Failed", message: `${why}; ${back !== undefined ? `it starts again on ${back}` : `the VM stays on ${t.before.source}`}` };
}

/** Deleted before the conversion began: nothing is converted, the VM comes back up where it was. */
function cancel(t: Turn): ConversionVerdict {
  const { f, before } = t;
  const i = f.instance;
  const cancelled = "deleted before its conversion began: nothing was converted";
  if (!i || i.host !== before.source || i.power === "Starting" || i.power === "Running") return { ...before, step: "Cancelled", message: `${cancelled}${i ? `, the VM is on ${i.host}` : ""}` };
  if (i.power === "Off" && !wantsOn(f, before)) return { ...before, step: "Cancelled", message: `${cancelled}; the VM stays off on ${before.source}` };
  const back = i.power === "Off" ? restartUnconverted(t) : undefined;
  if (back !== undefined) return { ...before, step: "Cancelling", message: `${cancelled}; starting it again on ${back}` };
  const message = i.power === "Stopping" ? `${cancelled}; the VM starts again on ${before.source} once its guest has shut down` : `${cancelled}; waiting for a ${before.from} host to start it again`;
  hold(t.state, f, { target: before.source, message });
  return { ...before, step: "Cancelling", message };
}

/** Starts the VM again, unconverted, when it is off on its source and should run: there, or on another host of its type; where, if it did. */
function restartUnconverted(t: Turn): string | undefined {
  const { f, before } = t;
  const i = f.instance;
  if (!i || i.power !== "Off" || i.host !== before.source || !wantsOn(f, before)) return undefined;
  return startOfType(t.s, t.state, f, { preferred: before.source, type: before.from, converted: false, reason: `${describeRequest(before)}: starting it again, unconverted` });
}

/**
 * A conversion no request speaks for this round (its request ended or is gone, a controller restarted): held
 * while it runs; once it ended, a VM still off where it left it since is started when it should run — on a
 * host of the type it has now (the target's if it was converted, its source's if not), and held until one
 * can take it, so placement never starts it on a host of the other type.
 */
function finishUnclaimed(s: Readonly<ClusterSituation>, state: StageState, c: Readonly<ConversionObservation>): void {
  const f = s.vms.find((v) => v.id === c.vm);
  if (!f || state.handled.has(f.id)) return;
  const i = f.instance;
  const converted = c.phase === "Succeeded";
  const where = converted ? c.target : c.source;
  if (c.phase === "Converting") {
    hold(state, f, { target: c.target, message: `converting for ${c.to} on ${c.target}: ${Math.round(c.convertedMiB)} of ${Math.round(c.totalMiB)} MiB`, reserve: true });
    return;
  }
  if (!i || i.power !== "Off" || i.host !== where || i.since > c.endsAt || desiredPower(f.vm, i) !== "On") return;
  const type = converted ? c.to : c.from;
  const started = startOfType(s, state, f, { preferred: where, type, converted, reason: `starting it after its conversion ${converted ? `for ${c.to}` : "failed"}` });
  if (started === undefined) hold(state, f, { target: where, message: `waiting for a ${type} host to take it after its conversion ${converted ? `for ${c.to}` : "failed"}` });
}

/**
 * Starts the VM on `preferred` when placement's filters let it go there now, else on the best other host of
 * `type` (a VM of one hypervisor type boots on that type only); the host it starts on, or undefined.
 */
function startOfType(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, start: { preferred: string; type: Hypervisor; converted: boolean; reason: string }): string | undefined {
  const fits = hostsThatFit(state.snapshot, { ...requestOf(f.vm), hypervisor: start.type }).fits;
  const host = fits.includes(start.preferred) ? start.preferred : fits[0];
  const declared = s.hosts.find((h) => h.name === host)?.host;
  if (host === undefined || !declared) return undefined;
  const isolation = { isolationResponse: f.protection.isolationResponse };
  const config = start.converted
    ? convertedConfig(f.vm, f.networks, s.cluster, declared, start.type, isolation)
    : { ...desiredConfig(f.vm, f.networks, s.cluster, declared.spec.cpu.features), ...isolation };
  startOn(state, f, { host, config, reason: `${start.reason} on ${host}` });
  return host;
}

// ------------------------------------------------------------------ what the steps share

/** Whether the VM runs on after the move: its runStrategy wants it on, or leaves it as it was (Manual) and it ran. */
function wantsOn(f: Readonly<VmFacts>, before: Readonly<ConversionVerdict>): boolean {
  const want = desiredPower(f.vm, f.instance);
  return want === "On" || (want === "AsIs" && before.powerOn === true);
}

export function shutDown(state: StageState, f: Readonly<VmFacts>, v: Readonly<ConversionVerdict>): void {
  state.actions.push({ stage: "migrations", action: { type: "Stop", vm: f.id, mode: "Shutdown", ...(f.instance ? { onHost: f.instance.host } : {}), reason: `${describeRequest(v)}: shutting it down to convert it for ${v.to}` } });
}

/**
 * No other stage starts or moves the VM this round; the VM's own reconcile says it is being converted. With
 * `reserve`, the VM's room on `target` is held for it: it holds none anywhere while it is off.
 */
export function hold(state: StageState, f: Readonly<VmFacts>, how: { target: string; message: string; reserve?: boolean }): void {
  state.handled.add(f.id);
  state.verdicts.set(f.id, { kind: "Converting", target: how.target, message: how.message });
  if (how.reserve) state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, { ...placedVm(requestOf(f.vm), how.target), id: `${f.id}@${how.target}` }] };
}

function startOn(state: StageState, f: Readonly<VmFacts>, start: { host: string; config: VmConfig; reason: string }): void {
  state.actions.push({ stage: "migrations", action: { type: "Start", vm: f.id, ...start } });
  state.handled.add(f.id);
  state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, placedVm(requestOf(f.vm), start.host)] };
}

/** MACs no VM of the cluster has, nor one of these: a new one must not be any of them. */
function takenMacs(s: Readonly<ClusterSituation>, f: Readonly<VmFacts>): Set<string> {
  return new Set(s.vms.filter((v) => v.id !== f.id).flatMap((v) => v.networks.map((n) => n.macAddress)));
}

function describeRequest(v: Readonly<ConversionVerdict>): string {
  return `VirtualMachineMigration ${v.key.slice("request:".length).split("/").slice(0, 2).join("/")}`;
}
