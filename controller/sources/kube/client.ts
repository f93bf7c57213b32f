// The API server, as Vireo talks to it: one endpoint from the kubeconfig, a client-side rate limit (QPS
// and burst, as client-go has), Retry-After honoured, and every request counted by verb, resource and code.

import { Counter, type Registry } from "prom-client";
import type { Kind } from "../../api/types.ts";
import { GROUP, VERSION } from "../../api/types.ts";
import { crdFor, isNamespaced } from "../../api/crds.ts";
import type { Clock } from "../../core/clock.ts";
import { TokenBucket } from "../../engine/ratelimit.ts";
import { CoreEvents, CustomObjects, Leases } from "./apis.ts";
import { loadEndpoint } from "./kubeconfig.ts";
import { ApiError, ApiTransport } from "./transport.ts";

/**
 * client-go's defaults (5 qps, burst 10) starve a controller of thousands of VMs. The API server's own
 * priority and fairness protects it; this limit only stops a runaway loop from flooding it.
 */
export const DEFAULT_QPS = 1000;
export const DEFAULT_BURST = 2000;

/** client-go's rest client retries a request the server asked to retry (Retry-After) up to 10 times. */
const MAX_RETRY_AFTER_RETRIES = 10;
/** A Retry-After longer than this is shortened: the server says "1" while its storage re-initializes. */
const MAX_RETRY_AFTER_MS = 10_000;
/**
 * How long a read or write waits for an API server it cannot reach (restarting, most likely) before the
 * reconcile that made it fails: long enough for a restart, so an outage is not a failed reconcile per object.
 */
export const UNREACHABLE_WAIT_MS = 60_000;
const UNREACHABLE_RETRY_MS = { base: 250, max: 2_000 };

export interface KubeClientOptions {
  kubeconfig?: string;
  qps?: number;
  burst?: number;
  clock: Clock;
  registry?: Registry;
}

export type Verb = "list" | "watch" | "get" | "patch" | "create" | "update" | "delete";

export class KubeClient {
  readonly transport: ApiTransport;
  readonly custom: CustomObjects;
  readonly core: CoreEvents;
  readonly coordination: Leases;
  readonly requests: Counter<"verb" | "resource" | "code">;
  private readonly bucket: TokenBucket;
  private readonly clock: Clock;
  private writes = 0;
  private retrying = true;
  private readonly waits = new Set<() => void>();

  constructor(options: KubeClientOptions) {
    this.transport = new ApiTransport(loadEndpoint(options.kubeconfig));
    this.custom = new CustomObjects(this.transport);
    this.core = new CoreEvents(this.transport);
    this.coordination = new Leases(this.transport);
    this.clock = options.clock;
    this.bucket = new TokenBucket({ qps: options.qps ?? DEFAULT_QPS, burst: options.burst ?? DEFAULT_BURST, clock: options.clock });
    this.requests = new Counter({
      name: "vireo_kube_requests_total",
      help: "Requests to the Kubernetes API server, by verb, resource and HTTP status code.",
      labelNames: ["verb", "resource", "code"] as const,
      registers: options.registry ? [options.registry] : [],
    });
  }

  /**
   * Runs one API request under the rate limit and counts it. A request the server asks to retry later
   * (429, or a 5xx with Retry-After) is retried after the time it names, as client-go does; a read or
   * write that cannot reach the server at all is retried for a while too (lists and watches are not:
   * their informer re-lists on its own schedule).
   */
  async call<T>(verb: Verb, resource: string, request: () => Promise<T>): Promise<T> {
    const started = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      await this.bucket.take();
      if (verb === "patch" || verb === "create" || verb === "update" || verb === "delete") this.writes++;
      try {
        const result = await request();
        this.requests.inc({ verb, resource, code: "200" });
        return result;
      } catch (error) {
        this.requests.inc({ verb, resource, code: String(statusOf(error) ?? "error") });
        const delay = this.retryDelay(verb, error, attempt, this.clock.now() - started);
        if (delay === undefined || !(await this.pause(delay))) throw error;
      }
    }
  }

  /** Ends every retry in progress, and refuses new ones: the process is stopping. */
  stopRetrying(): void {
    this.retrying = false;
    for (const wake of this.waits) wake();
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.stopRetrying();
    this.transport.close();
  }

  /** Writes (patch, create, update, delete) sent so far: what the density benchmark reports per VM. */
  writeCount(): number {
    return this.writes;
  }

  /** The server's base URL of the current context. */
  server(): string {
    return this.transport.endpoint.server;
  }

  private retryDelay(verb: Verb, error: unknown, attempt: number, elapsedMs: number): number | undefined {
    if (!this.retrying) return undefined;
    const asked = retryAfterMs(error);
    if (asked !== undefined) return attempt <= MAX_RETRY_AFTER_RETRIES ? asked : undefined;
    if (verb === "list" || verb === "watch" || !isUnreachable(error) || elapsedMs >= UNREACHABLE_WAIT_MS) return undefined;
    return Math.min(UNREACHABLE_RETRY_MS.max, UNREACHABLE_RETRY_MS.base * 2 ** (attempt - 1));
  }

  /** Waits; false when retries were stopped meanwhile. */
  private pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        timer.cancel();
        this.waits.delete(wake);
        resolve(this.retrying);
      };
      const timer = this.clock.setTimer(ms, wake);
      this.waits.add(wake);
    });
  }
}

/**
 * How long the server asked to wait before trying again: its Retry-After (capped), on a 429 (one second
 * when it names none: the request was throttled, not refused) or on a 5xx that names one.
 */
export function retryAfterMs(error: unknown): number | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const seconds = error.retryAfterSeconds ?? (error.code === 429 ? 1 : undefined);
  if (seconds === undefined || !(error.code === 429 || error.code >= 500)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(100, seconds * 1000));
}

/** A request that never got an answer: the server is down, restarting, or the connection broke. */
export function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ECONNABORTED"].includes(code);
}

/** A failed API call in one line: the status code and the server's own message, not the whole response. */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiError) {
    let message = typeof error.body === "string" ? error.body : JSON.stringify(error.body);
    try {
      const status = JSON.parse(message) as { message?: string; reason?: string };
      message = status.message ?? status.reason ?? message;
    } catch (notJson) {
      if (!(notJson instanceof SyntaxError)) throw notJson;
    }
    return `HTTP ${error.code}: ${message.trim().slice(0, 300)}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The HTTP status of a failed API call, if it got that far. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiError) return error.code;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

export interface ResourceInfo {
  kind: Kind;
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export function resourceOf(kind: Kind): ResourceInfo {
  return { kind, group: GROUP, version: VERSION, plural: crdFor(kind).spec.names.plural, namespaced: isNamespaced(kind) };
}

/** The API path of a collection (all namespaces) or of one object. */
export function pathOf(resource: ResourceInfo, name?: string, namespace?: string): string {
  const base = `/apis/${resource.group}/${resource.version}`;
  const ns = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${resource.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}
