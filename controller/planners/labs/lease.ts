// Leases against VM sprawl, as vCloud Director has them: a runtime lease counted from power-on, after which
// the lab is stopped; a storage lease counted from its stop, after which it is deleted; a maximum lifetime
// from creation that no renewal passes; warnings before each expiry; an exemption label. A plain VM's
// `spec.lease` counts from its creation. Pure.

import type { LabLease, VirtualMachine } from "../../api/types.ts";
import { LEASE_EXEMPT_LABEL } from "../../api/types.ts";

export interface LeaseFacts {
  lease?: LabLease;
  exempt: boolean;
  createdAt: number;
  /** When the lab last powered on, while it runs. */
  startedAt?: number;
  /** When it stopped, while it is stopped. */
  stoppedAt?: number;
  now: number;
}

export interface LeaseVerdict {
  /** The runtime lease (or the lifetime) has run out: the lab stops. */
  stop: boolean;
  /** The storage lease (or the lifetime) has run out: the lab is deleted. */
  delete: boolean;
  /** The next expiry, and what it does. */
  next?: { at: number; action: "Stop" | "Delete" };
  /** Set inside a warning window: which expiry, and how far ahead it is. */
  warning?: { action: "Stop" | "Delete"; at: number; before: string };
  /** When the verdict changes by time alone. */
  wakeAt?: number;
}

/** Parses a Go-style duration ("8h", "90m", "1h30m", "45s") to ms; undefined when it is not one. */
export function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  if (rest.length === 0) return undefined;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * units[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return total;
}

export function leaseVerdict(f: Readonly<LeaseFacts>): LeaseVerdict {
  if (f.exempt || !f.lease) return { stop: false, delete: false };
  const lifetimeEnd = f.createdAt + (durationMs(f.lease.maxLifetime) ?? Infinity);
  const runtime = durationMs(f.lease.runtime);
  const storage = durationMs(f.lease.storage);
  const stopAt = f.startedAt !== undefined && f.stoppedAt === undefined ? Math.min(f.startedAt + (runtime ?? Infinity), lifetimeEnd) : Infinity;
  const deleteAt = f.stoppedAt !== undefined ? Math.min(f.stoppedAt + (storage ?? Infinity), lifetimeEnd) : lifetimeEnd;
  const verdict: LeaseVerdict = { stop: f.now >= stopAt, delete: f.now >= deleteAt };
  const upcoming = [{ at: stopAt, action: "Stop" as const }, { at: deleteAt, action: "Delete" as const }]
    .filter((e) => Number.isFinite(e.at) && e.at > f.now)
    .sort((a, b) => a.at - b.at);
  const next = upcoming[0];
  if (next) verdict.next = next;
  const wakes: number[] = upcoming.map((e) => e.at);
  for (const event of upcoming) {
    // The widest window that has opened says how soon; the next narrower one is when to look again.
    const windows = f.lease.warnBefore.map((w) => ({ text: w, ms: durationMs(w) ?? 0 })).sort((a, b) => b.ms - a.ms);
    for (const w of windows) {
      const opens = event.at - w.ms;
      if (f.now >= opens) {
        verdict.warning ??= { action: event.action, at: event.at, before: w.text };
      } else {
        wakes.push(opens);
      }
    }
  }
  if (verdict.warning) {
    // The narrowest window already open names the warning, so each offset is told once.
    const open = f.lease.warnBefore.map((w) => ({ text: w, ms: durationMs(w) ?? 0 })).filter((w) => f.now >= verdict.warning!.at - w.ms).sort((a, b) => a.ms - b.ms)[0];
    if (open) verdict.warning.before = open.text;
  }
  const wake = Math.min(...wakes.filter((t) => t > f.now));
  if (Number.isFinite(wake)) verdict.wakeAt = wake;
  return verdict;
}

/** A plain VM's own lease (`spec.lease`), counted from its creation, unless the exemption label says otherwise. */
export function vmLease(vm: Readonly<VirtualMachine>): { expiresAt: number; onExpiry: "Stop" | "Delete" } | undefined {
  const lease = vm.spec.lease;
  const ttl = durationMs(lease?.ttl);
  if (!lease || ttl === undefined || vm.metadata.labels?.[LEASE_EXEMPT_LABEL] === "true" || !vm.metadata.creationTimestamp) return undefined;
  return { expiresAt: Date.parse(vm.metadata.creationTimestamp) + ttl, onExpiry: lease.onExpiry };
}

/** The VM as its lease leaves it: Halted once the lease has run out, so no planner starts it again. */
export function withLease(vm: VirtualMachine, now: number): VirtualMachine {
  const lease = vmLease(vm);
  return lease && now >= lease.expiresAt && vm.spec.runStrategy !== "Halted" ? { ...vm, spec: { ...vm.spec, runStrategy: "Halted" } } : vm;
}
