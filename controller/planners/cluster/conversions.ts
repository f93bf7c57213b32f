// Requested moves to another hypervisor type (V2V), always cold: the pre-check, then the VM shut down on its
// source, converted for a host of the target type (core/conversion.ts), and started there. The first stage
// of the cluster's round carries the conversions under way, so that no later stage (HA restarts, placement,
// evacuation, balancing) starts or moves a VM that is being converted; the "migrations" stage judges the
// new requests (judgeConversion). docs/migration.md, "Moves between hypervisor types", tells the story.
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
import { INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, hostsThatFit, requestOf } from "../../placement/index.ts";
import { placedVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import { desiredPower } from "../run-strategy.ts";
import { convertedConfig, renewedMacs, sameMacs } from "../migration/conversion-config.ts";
import { conversionPreCheck } from "../migration/pre-check.ts";
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

const UNDER_WAY: ReadonlySet<ConversionStep> = new Set(["ShuttingDown", "Converting", "Starting", "Cancelling"]);
const ENDED: ReadonlySet<ConversionStep> = new Set(["Refused", "Failed", "Succeeded", "Cancelled"]);

/** A VM still running this long after it was asked to shut down is asked again (the first call may not have reached its host). */
const ASK_AGAIN_MS = 5_000;
/** How long the hosts may take to begin a conversion asked for before it is given up and the VM started again where it was. */
export const CONVERT_START_TIMEOUT_MS = 120_000;
/** A conversion asked for is looked at again this soon: the hosts' report of it, or their refusal, is due. */
const CONVERT_LOOK_AGAIN_MS = 2_000;

export function isUnderWay(verdict: RequestVerdict | undefined): boolean {
  return verdict?.kind === "Conversion" && UNDER_WAY.has(verdict.step);
}

export function isConversionEnded(step: ConversionStep): boolean {
  return ENDED.has(step);
}

// ------------------------------------------------------------------ the first stage: conversions under way

/** Carries every conversion under way one step on, holding its VM; finishes what the hosts converted for a request gone. */
export function conversionsStage(s: Readonly<ClusterSituation>, state: StageState): void {
  const present = new Set(s.requests.map(requestName));
  const covered = new Set<string>();
  for (const request of [...s.requests].sort((a, b) => byCodeUnits(requestName(a), requestName(b)))) {
    const before = underWay(s, request);
    if (!before) continue;
    covered.add(before.key);
    const f = s.vms.find((v) => v.id === before.vm);
    const next = ENDED.has(before.step) ? before : f ? advance(s, state, f, before, request) : { ...before, step: "Failed" as const, message: `VirtualMachine ${before.vm} is gone` };
    state.requestVerdicts.set(requestName(request), next);
  }
  // A request deleted (in the file mode, gone at once) while its conversion was under way: carried on.
  for (const [name, before] of s.previousRequests ?? []) {
    if (present.has(name) || before.kind !== "Conversion" || !UNDER_WAY.has(before.step)) continue;
    covered.add(before.key);
    const f = s.vms.find((v) => v.id === before.vm);
    const next = f ? advance(s, state, f, before, undefined) : undefined;
    if (next && UNDER_WAY.has(next.step)) state.requestVerdicts.set(name, next);
  }
  for (const c of s.conversions ?? []) if (!covered.has(c.key)) finishUnclaimed(s, state, c);
}

/** The request's conversion under way or just ended: as the last round left it, or as its status and the hosts tell after a restart. */
function underWay(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>): ConversionVerdict | undefined {
  const before = s.previousRequests?.get(requestName(request));
  if (before?.kind === "Conversion" && before.step !== "Pending") return before;
  const key = requestKey(request);
  const vm = requestVm(request);
  const status = request.status;
  const c = s.conversions?.find((x) => x.vm === vm && x.key === key);
  const since = status?.startTime ? Date.parse(status.startTime) : undefined;
  if (c) {
    const preCheck = status?.preCheck ?? { from: c.from, to: c.to, blockers: [], warnings: [], estimatedSeconds: (c.endsAt - c.startedAt) / 1000, diskMiB: c.totalMiB };
    return { kind: "Conversion", step: "Converting", key, vm, from: c.from, to: c.to, source: c.source, target: c.target, preCheck, message: "", since: since ?? c.startedAt };
  }
  const phase = status?.phase;
  if (!status?.preCheck || !status.sourceHost || (phase !== "ShuttingDown" && phase !== "Converting" && phase !== "Starting")) return undefined;
  const { from, to } = status.preCheck;
  return { kind: "Conversion", step: phase, key, vm, from, to, source: status.sourceHost, ...(status.targetHost ? { target: status.targetHost } : {}), preCheck: status.preCheck, message: "", ...(since !== undefined ? { since } : {}) };
}

function advance(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, request: Readonly<VirtualMachineMigration> | undefined): ConversionVerdict {
  const c = s.conversions?.find((x) => x.vm === f.id && x.key === before.key);
  if (c) return reported(s, state, f, before, c, request);
  const deleted = request === undefined || request.metadata.deletionTimestamp !== undefined;
  switch (before.step) {
    case "ShuttingDown":
    case "Cancelling":
      return deleted || before.step === "Cancelling" ? cancel(s, state, f, before) : shuttingDown(s, state, f, before, request);
    case "Converting": return convert(s, state, f, before, request);
    default: return landed(s, state, f, before, request);
  }
}

/** The guest shuts down on its source; once it is off, the hosts are asked to convert it. */
function shuttingDown(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, request: Readonly<VirtualMachineMigration> | undefined): ConversionVerdict {
  const i = f.instance;
  if (!i || i.host !== before.source) return { ...before, step: "Failed", message: `the VM left host ${before.source} while it shut down${i ? ` and is on ${i.host} now` : ""}: nothing was converted` };
  if (i.power === "Off") return convert(s, state, f, before, request);
  if (i.power !== "Stopping" && s.now - (before.since ?? s.now) >= ASK_AGAIN_MS) shutDown(state, f, before);
  const message = `shutting down on ${before.source} to be converted for ${before.to} on ${before.target}`;
  hold(state, f, before.target ?? before.source, message, before.target);
  return { ...before, step: "ShuttingDown", message };
}

/** The VM is off on its source: the hosts convert it (asked again each round until they report it, under the same key). */
function convert(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, request: Readonly<VirtualMachineMigration> | undefined): ConversionVerdict {
  const i = f.instance;
  if (!i || i.host !== before.source) return { ...before, step: "Failed", message: `the VM left host ${before.source} before its conversion began${i ? ` and is on ${i.host} now` : ""}: nothing was converted` };
  if (i.power !== "Off") return { ...before, step: "Failed", message: `the VM was powered on on ${before.source} before its conversion began: nothing was converted` };
  if (before.refused !== undefined) return fail(s, state, f, before, `the hosts refused to convert it: ${before.refused}`);
  const askedAt = before.convertAskedAt ?? s.now;
  if (s.now - askedAt >= CONVERT_START_TIMEOUT_MS) return fail(s, state, f, before, `the hosts did not begin converting it within ${CONVERT_START_TIMEOUT_MS / 1000} s`);
  const target = before.target === undefined ? undefined : s.hosts.find((h) => h.name === before.target)?.host;
  if (!target) return fail(s, state, f, before, `its target host ${before.target ?? "(none)"} is gone`);
  const macs = before.macs ?? (request?.spec.keepMacAddresses === false ? renewedMacs(f.vm, f.networks, takenMacs(s, f)) : undefined);
  const config = convertedConfig(f.vm, macs ?? f.networks, s.cluster, target, before.to, { isolationResponse: f.protection.isolationResponse });
  const reason = `${describeRequest(before)}: converting it for ${before.to}`;
  state.actions.push({ stage: "migrations", action: { type: "Convert", vm: f.id, target: target.metadata.name, config, settings: { key: before.key, rateMiBps: DEFAULT_CONVERSION_RATE_MIBPS }, reason } });
  const message = `asked the hosts to convert it for ${before.to} on ${target.metadata.name}`;
  hold(state, f, target.metadata.name, message, target.metadata.name);
  state.wakeAt = Math.min(state.wakeAt ?? Infinity, s.now + CONVERT_LOOK_AGAIN_MS);
  return { ...before, step: "Converting", convertAskedAt: askedAt, ...(macs ? { macs } : {}), message };
}

/** What the hosts report of the conversion. */
function reported(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, c: Readonly<ConversionObservation>, request: Readonly<VirtualMachineMigration> | undefined): ConversionVerdict {
  const now = { ...before, source: c.source, target: c.target };
  switch (c.phase) {
    case "Converting": {
      const message = `converting for ${c.to} on ${c.target}: ${Math.round(c.convertedMiB)} of ${Math.round(c.totalMiB)} MiB`;
      hold(state, f, c.target, message, c.target);
      return { ...now, step: "Converting", message };
    }
    case "Failed": return fail(s, state, f, now, `the conversion failed: ${c.reason ?? "the hosts gave no reason"}`);
    case "Succeeded": return landed(s, state, f, now, request);
  }
}

/** Converted, the VM is registered off on the target: it takes on its new MACs, if it gets any, and starts there. */
function landed(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, request: Readonly<VirtualMachineMigration> | undefined): ConversionVerdict {
  const i = f.instance;
  const target = before.target ?? "";
  const done = `converted ${before.from} → ${before.to}`;
  if (!i) return { ...before, step: "Failed", message: `${done}, but no host reports the VM any more` };
  if (i.host !== target) return { ...before, step: "Succeeded", message: `${done}; the VM is on host ${i.host} now` };
  if (i.power === "Running") return { ...before, step: "Succeeded", message: `${done}: running on ${target}` };
  if (i.power !== "Off") return { ...before, step: "Starting", message: `${done}: starting on ${target}` };
  if (request?.spec.keepMacAddresses === false && !sameMacs(i.config.nics, f.networks)) {
    const message = `${done}: taking on its new MAC addresses before it starts on ${target}`;
    hold(state, f, target, message, target);
    return { ...before, step: "Converting", message };
  }
  if (!wantsOn(f, before)) return { ...before, step: "Succeeded", message: `${done}: registered on ${target}, off as its runStrategy asks` };
  const host = s.hosts.find((h) => h.name === target)?.host;
  if (!host) return { ...before, step: "Failed", message: `${done}, but host ${target} is gone` };
  startOn(state, f, target, convertedConfig(f.vm, f.networks, s.cluster, host, before.to, { isolationResponse: f.protection.isolationResponse }), `${describeRequest(before)}: starting it on ${target}, converted for ${before.to}`);
  return { ...before, step: "Starting", message: `${done}: starting on ${target}` };
}

/** The conversion ends before the VM reached the target: it starts again where it was, unconverted. */
function fail(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict, why: string): ConversionVerdict {
  const back = startAgainAtSource(s, state, f, before);
  return { ...before, step: "Failed", message: `${why}; ${back ? `it starts again on ${before.source}` : `the VM stays on ${before.source}`}` };
}

/** Deleted before the conversion began: nothing is converted, the VM comes back up where it was. */
function cancel(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict): ConversionVerdict {
  const i = f.instance;
  const cancelled = "deleted before its conversion began: nothing was converted";
  if (!i || i.host !== before.source || i.power === "Starting" || i.power === "Running") return { ...before, step: "Cancelled", message: `${cancelled}${i ? `, the VM is on ${i.host}` : ""}` };
  if (i.power === "Stopping") {
    const message = `${cancelled}; the VM starts again on ${before.source} once its guest has shut down`;
    hold(state, f, before.source, message);
    return { ...before, step: "Cancelling", message };
  }
  if (!startAgainAtSource(s, state, f, before)) return { ...before, step: "Cancelled", message: `${cancelled}; the VM stays off on ${before.source}` };
  return { ...before, step: "Cancelling", message: `${cancelled}; starting it again on ${before.source}` };
}

/** Starts the VM again on its source when it is off there and should run; whether it did. */
function startAgainAtSource(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, before: ConversionVerdict): boolean {
  const i = f.instance;
  if (!i || i.power !== "Off" || i.host !== before.source || !wantsOn(f, before)) return false;
  const features = s.hosts.find((h) => h.name === before.source)?.host?.spec.cpu.features ?? [];
  const config = { ...desiredConfig(f.vm, f.networks, s.cluster, features), isolationResponse: f.protection.isolationResponse };
  startOn(state, f, before.source, config, `${describeRequest(before)}: starting it again on ${before.source}, unconverted`);
  return true;
}

/**
 * A conversion no request speaks for this round (its request ended or is gone, a controller restarted): held
 * while it runs; once it ended, a VM still off where it left it since is started (on the target if it was
 * converted, on its source if not) when it should run.
 */
function finishUnclaimed(s: Readonly<ClusterSituation>, state: StageState, c: Readonly<ConversionObservation>): void {
  const f = s.vms.find((v) => v.id === c.vm);
  if (!f || state.handled.has(f.id)) return;
  if (c.phase === "Converting") {
    hold(state, f, c.target, `converting for ${c.to} on ${c.target}: ${Math.round(c.convertedMiB)} of ${Math.round(c.totalMiB)} MiB`, c.target);
    return;
  }
  const i = f.instance;
  const where = c.phase === "Succeeded" ? c.target : c.source;
  if (!i || i.power !== "Off" || i.host !== where || i.since > c.endsAt || desiredPower(f.vm, i) !== "On") return;
  const host = s.hosts.find((h) => h.name === where)?.host;
  if (!host) return;
  const config = c.phase === "Succeeded"
    ? convertedConfig(f.vm, f.networks, s.cluster, host, c.to, { isolationResponse: f.protection.isolationResponse })
    : { ...desiredConfig(f.vm, f.networks, s.cluster, host.spec.cpu.features), isolationResponse: f.protection.isolationResponse };
  startOn(state, f, where, config, `starting it on ${where} after its conversion ${c.phase === "Succeeded" ? `for ${c.to}` : "failed"}`);
}

// ------------------------------------------------------------------ new requests, judged in the "migrations" stage

/** The hypervisor type a request converts its VM to, when it asks for another than the one the VM is on. */
export function conversionTo(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): Hypervisor | undefined {
  const from = f.instanceHost?.host?.spec.hypervisor;
  if (from === undefined) return undefined;
  const named = request.spec.targetHost === undefined ? undefined : s.hosts.find((h) => h.name === request.spec.targetHost)?.host?.spec.hypervisor;
  const asked = request.spec.targetHypervisor;
  if (asked !== undefined && asked !== from) return asked;
  return named !== undefined && named !== from ? named : undefined;
}

/** How many more conversions may begin this round: the cluster's parallelMigrations, counted apart from live migrations. */
export function conversionSlots(s: Readonly<ClusterSituation>, state: Readonly<StageState>): { free: number } {
  const busy = [...state.requestVerdicts.values()].filter((v) => v.kind === "Conversion" && (v.step === "ShuttingDown" || v.step === "Converting")).length;
  return { free: s.cluster.spec.migration.parallelMigrations - busy };
}

export interface ConversionAsk {
  request: Readonly<VirtualMachineMigration>;
  f: Readonly<VmFacts>;
  to: Hypervisor;
  /** Why the host the request names cannot be the target, found before the pre-check. */
  targetRefusal?: string;
}

/** A new conversion request: its pre-check, then its target and a slot; then the VM is shut down (or, off already, converted). */
export function judgeConversion(s: Readonly<ClusterSituation>, state: StageState, ask: Readonly<ConversionAsk>, slots: { free: number }): ConversionVerdict {
  const { request, f, to } = ask;
  const i = f.instance!;
  const source = f.instanceHost!.host!;
  const preCheck = conversionPreCheck({
    vm: f.vm,
    config: i.config,
    power: i.power,
    source,
    to,
    hosts: s.hosts.flatMap((h) => (h.host ? [h.host] : [])),
    ...(request.spec.targetHost !== undefined ? { targetHost: request.spec.targetHost } : {}),
    ...(request.spec.targetHypervisor !== undefined ? { targetHypervisor: request.spec.targetHypervisor } : {}),
    mode: request.spec.mode,
    keepMacAddresses: request.spec.keepMacAddresses !== false,
    rateMiBps: DEFAULT_CONVERSION_RATE_MIBPS,
    ...(f.role.kind !== "Home" ? { elsewhere: `it runs away from its own cluster (${f.role.kind}): convert it once it is back home` } : {}),
  });
  const checked = ask.targetRefusal ? { ...preCheck, blockers: [ask.targetRefusal, ...preCheck.blockers] } : preCheck;
  const base: ConversionVerdict = { kind: "Conversion", step: "Pending", key: requestKey(request), vm: f.id, from: source.spec.hypervisor, to, source: i.host, preCheck: checked, message: "" };
  if (checked.blockers.length > 0) return refused(base, checked.blockers);
  if (i.power === "Starting" || i.power === "Stopping") return { ...base, message: `waiting for the VM to finish ${i.power === "Starting" ? "starting" : "stopping"} on ${i.host}` };
  const choice = conversionTarget(state, f, to, request.spec.targetHost);
  if (choice.refused !== undefined) return refused({ ...base, preCheck: { ...checked, blockers: [choice.refused] } }, [choice.refused]);
  if (choice.host === undefined) return { ...base, message: choice.waiting ?? "waiting" };
  if (slots.free <= 0) return { ...base, target: choice.host, message: `waiting for a conversion slot (${s.cluster.spec.migration.parallelMigrations} at once in the cluster)` };
  slots.free -= 1;
  const chosen: ConversionVerdict = { ...base, target: choice.host, since: s.now, powerOn: i.power === "Running" };
  if (i.power === "Off") return convert(s, state, f, { ...chosen, step: "Converting" }, request);
  shutDown(state, f, chosen);
  const message = `shutting down on ${i.host} to be converted for ${to} on ${choice.host}`;
  hold(state, f, choice.host, message, choice.host);
  return { ...chosen, step: "ShuttingDown", message };
}

function refused(base: ConversionVerdict, blockers: readonly string[]): ConversionVerdict {
  return { ...base, step: "Refused", message: `refused by its pre-check: ${blockers.join("; ")}` };
}

/** The host of type `to` placement would take the VM to now (the one named, if it can), or why it waits or cannot go. */
function conversionTarget(state: Readonly<StageState>, f: Readonly<VmFacts>, to: Hypervisor, named: string | undefined): { host?: string; waiting?: string; refused?: string } {
  const fit = hostsThatFit(state.snapshot, { ...requestOf(f.vm), hypervisor: to });
  const host = named === undefined ? fit.fits[0] : fit.fits.find((h) => h === named);
  if (host !== undefined) return { host };
  const rejected = Object.entries(fit.rejected).filter(([reason]) => reason !== `hypervisor is not ${to}`);
  const why = `${named !== undefined ? `host ${named} cannot take it now` : `no ${to} host can take it now`} (${rejected.map(([reason, n]) => `${n} ${reason}`).join(", ") || "no host"})`;
  const transient = rejected.every(([reason]) => TRANSIENT.has(reason));
  return transient ? { waiting: why } : { refused: why };
}

/** Why a host of the right kind cannot take the VM now that passes by itself: room, or the host coming back. */
const TRANSIENT: ReadonlySet<string> = new Set([INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, "not ready", "in maintenance", "being removed", "not registered"]);

// ------------------------------------------------------------------ what the steps share

/** Whether the VM runs on after the move: its runStrategy wants it on, or leaves it as it was (Manual) and it ran. */
function wantsOn(f: Readonly<VmFacts>, before: Readonly<ConversionVerdict>): boolean {
  const want = desiredPower(f.vm, f.instance);
  return want === "On" || (want === "AsIs" && before.powerOn === true);
}

function shutDown(state: StageState, f: Readonly<VmFacts>, v: Readonly<ConversionVerdict>): void {
  state.actions.push({ stage: "migrations", action: { type: "Stop", vm: f.id, mode: "Shutdown", reason: `${describeRequest(v)}: shutting it down to convert it for ${v.to}` } });
}

/**
 * No other stage starts or moves the VM this round; the VM's own reconcile says it is being converted. While
 * the VM goes to `reserve`, its room there is held for it: it holds none anywhere while it is off.
 */
function hold(state: StageState, f: Readonly<VmFacts>, target: string, message: string, reserve?: string): void {
  state.handled.add(f.id);
  state.verdicts.set(f.id, { kind: "Converting", target, message });
  if (reserve !== undefined) state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, { ...placedVm(requestOf(f.vm), reserve), id: `${f.id}@${reserve}` }] };
}

function startOn(state: StageState, f: Readonly<VmFacts>, host: string, config: VmConfig, reason: string): void {
  state.actions.push({ stage: "migrations", action: { type: "Start", vm: f.id, host, config, reason } });
  state.handled.add(f.id);
  state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, placedVm(requestOf(f.vm), host)] };
}

/** MACs no VM of the cluster has, nor one of these: a new one must not be any of them. */
function takenMacs(s: Readonly<ClusterSituation>, f: Readonly<VmFacts>): Set<string> {
  return new Set(s.vms.filter((v) => v.id !== f.id).flatMap((v) => v.networks.map((n) => n.macAddress)));
}

function describeRequest(v: Readonly<ConversionVerdict>): string {
  return `VirtualMachineMigration ${v.key.slice("request:".length).split("/").slice(0, 2).join("/")}`;
}
