// Conversions between hypervisor types (V2V) as metrics: each counted once, when its VirtualMachineMigration
// ends, by result; the downtime of each that succeeded; and those under way, by phase, read from the store
// at scrape time so the figure can never drift from the objects. docs/metrics.md lists them.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { VirtualMachineMigrationStatus } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";

/** How a conversion ended: converted, failed on the way (the VM back where it was), refused by its pre-check (nothing touched), cancelled. */
export const CONVERSION_RESULTS = ["Succeeded", "Failed", "Refused", "Cancelled"] as const;
export type ConversionResult = (typeof CONVERSION_RESULTS)[number];

const UNDER_WAY = ["Pending", "ShuttingDown", "Converting", "Starting"] as const;

export function conversionCounter(registry: Registry): Counter<"result"> {
  const counter = new Counter({
    name: "vireo_conversions_total",
    help: "Conversions to another hypervisor type that ended, by result (Succeeded; Failed: the VM starts again where it was; Refused: by the pre-check, before anything was touched; Cancelled).",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  // Every result from the start, so the first conversion of each is an increase rate() sees.
  for (const result of CONVERSION_RESULTS) counter.inc({ result }, 0);
  return counter;
}

export function conversionDowntimeHistogram(registry: Registry): Histogram {
  return new Histogram({
    name: "vireo_conversion_downtime_seconds",
    help: "For a conversion that succeeded, from the VM's shutdown on its source to its request's end (running on the target, or registered there when it stays off).",
    buckets: [60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800],
    registers: [registry],
  });
}

/** The result of a request that ended, if it was a conversion (it carries a pre-check). */
export function conversionResult(status: Readonly<VirtualMachineMigrationStatus>): ConversionResult | undefined {
  if (!status.preCheck) return undefined;
  switch (status.phase) {
    case "Succeeded": return "Succeeded";
    case "Cancelled": return "Cancelled";
    case "Failed": return status.preCheck.blockers.length > 0 ? "Refused" : "Failed";
    default: return undefined;
  }
}

/** The downtime of a conversion that succeeded, s, from its status (shut down at startTime). */
export function conversionDowntime(status: Readonly<VirtualMachineMigrationStatus>): number | undefined {
  if (status.phase !== "Succeeded" || !status.startTime || !status.completionTime) return undefined;
  return Math.max(0, Date.parse(status.completionTime) - Date.parse(status.startTime)) / 1000;
}

/** `vireo_conversions_in_progress{phase}`: the conversion requests not ended, by phase. */
export function attachConversionGauges(registry: Registry, store: ObjectStore): void {
  new Gauge({
    name: "vireo_conversions_in_progress",
    help: "VirtualMachineMigrations converting a VM to another hypervisor type that have not ended, by phase (Pending, ShuttingDown, Converting, Starting).",
    labelNames: ["phase"] as const,
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(UNDER_WAY.map((p) => [p, 0]));
      for (const request of store.list("VirtualMachineMigration")) {
        const phase = request.status?.phase;
        if (request.status?.preCheck && phase !== undefined && counts.has(phase)) counts.set(phase, counts.get(phase)! + 1);
      }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
}
