// What the cluster benchmark reads beside the controllers it measures: a watch of one collection that
// notes when every object reached a milestone (placed, Ready), the API server's own counters of writes
// and watch events, and a process's CPU time and peak memory from /proc.

import { readFileSync } from "node:fs";
import { request } from "node:https";
import { performance } from "node:perf_hooks";
import type { ControlPlane } from "../test/envtest/controlplane.ts";

export interface WatchedObject {
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A state every object reaches on its way, e.g. "has a host": when the last of them got there. */
export type Milestone = (object: Readonly<WatchedObject>) => boolean;

interface WatchEvent {
  type: string;
  object: WatchedObject;
}

/**
 * Watches a collection from resourceVersion 0 (every object as ADDED, then every change) and notes, for each
 * milestone, when the last of `expected` objects reached it. Counts the events it received, so that the
 * benchmark can take its own share out of the API server's count.
 */
export class MilestoneWatch<Name extends string> {
  events = 0;
  private readonly reachedBy = new Map<Name, Set<string>>();
  private readonly reachedAt = new Map<Name, number>();
  private readonly expected: number;
  private readonly milestones: Readonly<Record<Name, Milestone>>;
  private buffer = "";
  private failure: Error | undefined;
  private readonly abort = new AbortController();

  constructor(cp: ControlPlane, path: string, expected: number, milestones: Readonly<Record<Name, Milestone>>) {
    this.expected = expected;
    this.milestones = milestones;
    for (const name of Object.keys(milestones) as Name[]) this.reachedBy.set(name, new Set());
    const url = new URL(`${cp.server}${path}?watch=true&resourceVersion=0&timeoutSeconds=7200`);
    const req = request(url, { ca: readFileSync(cp.caFile), headers: { Authorization: `Bearer ${cp.token}`, Accept: "application/json" }, signal: this.abort.signal }, (res) => {
      if (res.statusCode !== 200) this.failure = new Error(`watch ${path}: HTTP ${res.statusCode}`);
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => this.receive(chunk));
      res.on("end", () => { this.failure ??= new Error(`watch ${path} ended`); });
    });
    req.on("error", (e) => { if (!this.abort.signal.aborted) this.failure = new Error(`watch ${path}: ${e.message}`, { cause: e }); });
    req.end();
  }

  /** How many objects are at the milestone now. */
  count(milestone: Name): number {
    return this.reachedBy.get(milestone)!.size;
  }

  /**
   * Waits until every object reached the milestone; resolves with when that was (performance.now()).
   * `stillRunning` throws when waiting longer is pointless (the controller exited).
   */
  async reached(milestone: Name, ms: number, stillRunning: () => void = () => undefined): Promise<number> {
    const deadline = performance.now() + ms;
    for (;;) {
      const at = this.reachedAt.get(milestone);
      if (at !== undefined) return at;
      if (this.failure) throw this.failure;
      stillRunning();
      if (performance.now() > deadline) throw new Error(`${this.count(milestone)} of ${this.expected} objects ${milestone} after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stop(): void {
    this.abort.abort();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end = this.buffer.indexOf("\n");
    while (end >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      if (line.trim() !== "") this.apply(JSON.parse(line) as WatchEvent);
      end = this.buffer.indexOf("\n");
    }
  }

  private apply(event: WatchEvent): void {
    this.events++;
    if (event.type === "ERROR") this.failure = new Error(`watch error: ${JSON.stringify(event.object)}`);
    const key = `${event.object.metadata.namespace ?? ""}/${event.object.metadata.name}`;
    const now = performance.now();
    for (const [name, reached] of Object.entries(this.milestones) as [Name, Milestone][]) {
      const objects = this.reachedBy.get(name)!;
      if (event.type !== "DELETED" && reached(event.object)) objects.add(key);
      else objects.delete(key);
      if (objects.size >= this.expected && !this.reachedAt.has(name)) this.reachedAt.set(name, now);
    }
  }
}

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels match `where` (a value, or a list of values allowed). */
export function sum(samples: readonly Sample[], name: string, where: Readonly<Record<string, string | readonly string[]>> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => (typeof v === "string" ? s.labels[k] === v : v.includes(s.labels[k] ?? ""))))
    .reduce((total, s) => total + s.value, 0);
}

/** The API server's /metrics, read as the control plane's admin. */
export async function apiServerSamples(cp: ControlPlane): Promise<Sample[]> {
  const r = await cp.kubectl(["get", "--raw", "/metrics"]);
  if (r.code !== 0) throw new Error(`kubectl get --raw /metrics: ${r.stderr}`);
  return parseSamples(r.stdout);
}

export const WRITE_VERBS = ["POST", "PUT", "PATCH", "DELETE", "APPLY"] as const;

/** Writes the API server accepted or refused for a resource (every subresource included), by code class. */
export function writesTo(samples: readonly Sample[], resource: string): { all: number; conflicts: number } {
  const where = { resource, verb: WRITE_VERBS };
  return { all: sum(samples, "apiserver_request_total", where), conflicts: sum(samples, "apiserver_request_total", { ...where, code: "409" }) };
}

/** Watch events the API server sent for a resource, to every watcher. */
export function watchEventsOf(samples: readonly Sample[], resource: string): number {
  return sum(samples, "apiserver_watch_events_total", { resource });
}

export interface ProcessUsage {
  /** User and system CPU time since the process started. */
  cpuSeconds: number;
  /** The high-water mark of its resident memory (VmHWM). */
  peakResidentMiB: number;
  /** Bytes it caused to be written to storage (write_bytes of /proc/PID/io). */
  bytesWritten: number;
}

export function processUsage(pid: number): ProcessUsage {
  // /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  const written = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1];
  return {
    cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100,
    peakResidentMiB: Number(peak ?? Number.NaN) / 1024,
    bytesWritten: Number(written ?? Number.NaN),
  };
}

/** Figures right-aligned between a label and a bound, both left-aligned. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const last = widths.length - 1;
  return rows.map((r) => r.map((cell, i) => (i === 0 || i === last ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ").trimEnd()).join("\n");
}
