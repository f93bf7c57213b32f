// What `vireo hostsim` tells Prometheus (docs/metrics.md, "Simulated hosts"): the requests it answered, by
// route pattern, method and status code, and the power-ons it refused because another copy of the VM might
// still run — counted in the world itself, so the figure survives restarts of hostsim and of controllers.
// Every label comes from a bounded set: the routes' patterns (never a raw path), a few methods, status codes.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SimulatedHosts } from "../sim/index.ts";

/** The methods the API answers; any other is counted as "other". */
const METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "PUT", "POST", "DELETE"]);

export interface AnsweredRequest {
  method: string | undefined;
  /** The route's pattern (`/v1/vms/:namespace/:name/start`), a health path, or "unmatched". */
  route: string;
  status: number;
  seconds: number;
}

export class HostsimMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: "vireo_hostsim_requests_total",
    help: "Requests hostsim answered, by route pattern, method and status code.",
    labelNames: ["route", "method", "code"] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "vireo_hostsim_request_duration_seconds",
    help: "Time to answer a request, by route pattern and method (a long-poll of the observation waits up to 60 s).",
    labelNames: ["route", "method"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60],
    registers: [this.registry],
  });

  constructor(sim: SimulatedHosts, options: { version: string; processMetrics?: boolean }) {
    new Gauge({
      name: "vireo_hostsim_split_brain_attempts",
      help: "Power-ons the simulated hosts refused because another copy of the VM might still run, since the world was created (0 in a healthy run).",
      registers: [this.registry],
      collect() {
        this.set(sim.splitBrainAttempts());
      },
    });
    const info = new Gauge({ name: "vireo_hostsim_build_info", help: "hostsim's version; always 1.", labelNames: ["version", "node_version"] as const, registers: [this.registry] });
    info.set({ version: options.version, node_version: process.version }, 1);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "vireo_hostsim_" });
  }

  observeRequest({ method, route, status, seconds }: AnsweredRequest): void {
    const m = method !== undefined && METHODS.has(method) ? method : "other";
    this.requests.inc({ route, method: m, code: String(status) });
    this.duration.observe({ route, method: m }, seconds);
  }
}
