// What a person watching `vireo run` sees while VMs come up: one line when the picture changes,
// not a wall of JSON.

import type { VmPhase } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { Logger } from "../observe/log.ts";

const REPORT_EVERY_MS = 2_000;
const ORDER: readonly VmPhase[] = ["Running", "Starting", "Pending", "Unschedulable", "Stopping", "Stopped", "Migrating", "Failed"];

export function summarizeVms(store: ObjectStore): { line: string; settled: boolean; total: number } {
  const counts = new Map<string, number>();
  const vms = store.list("VirtualMachine");
  let settled = true;
  for (const vm of vms) {
    const phase = vm.status?.phase ?? "Pending";
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
    const ready = vm.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    const stalled = vm.status?.conditions?.find((c) => c.type === "Stalled")?.status === "True";
    if (!ready && !stalled) settled = false;
  }
  const parts = ORDER.filter((p) => counts.has(p)).map((p) => `${counts.get(p)} ${p}`);
  return { line: `VMs: ${parts.join(", ") || "none"}`, settled, total: vms.length };
}

export class ProgressReporter {
  private readonly store: ObjectStore;
  private readonly log: Logger;
  private last = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(store: ObjectStore, log: Logger) {
    this.store = store;
    this.log = log;
  }

  start(): void {
    this.report();
    this.timer = setInterval(() => this.report(), REPORT_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private report(): void {
    const { line, settled, total } = summarizeVms(this.store);
    const text = settled && total > 0 ? `${line} — settled` : line;
    if (text === this.last) return;
    this.last = text;
    this.log.info(text);
  }
}
