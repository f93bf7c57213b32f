// The API server, as Vireo talks to it: one KubeConfig, a client-side rate limit (QPS and burst, as
// client-go has), and every request counted by verb, resource and status code.

import { ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { Counter, type Registry } from "prom-client";
import { createHash } from "node:crypto";
import type { Kind } from "../../api/types.ts";
import { GROUP, VERSION } from "../../api/types.ts";
import { crdFor, isNamespaced } from "../../api/schema.ts";
import type { Clock } from "../../core/clock.ts";
import { TokenBucket } from "../../engine/ratelimit.ts";

/**
 * client-go's defaults (5 qps, burst 10) starve a controller of thousands of VMs. The API server's own
 * priority and fairness protects it; this limit only stops a runaway loop from flooding it.
 */
export const DEFAULT_QPS = 1000;
export const DEFAULT_BURST = 2000;

export interface KubeClientOptions {
  kubeconfig?: string;
  qps?: number;
  burst?: number;
  clock: Clock;
  registry?: Registry;
}

export type Verb = "list" | "watch" | "get" | "patch" | "create" | "update" | "delete";

export class KubeClient {
  readonly config: KubeConfig;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly requests: Counter<"verb" | "resource" | "code">;
  private readonly bucket: TokenBucket;
  private writes = 0;

  constructor(options: KubeClientOptions) {
    this.config = loadKubeConfig(options.kubeconfig);
    this.custom = this.config.makeApiClient(CustomObjectsApi);
    this.core = this.config.makeApiClient(CoreV1Api);
    this.coordination = this.config.makeApiClient(CoordinationV1Api);
    this.bucket = new TokenBucket({ qps: options.qps ?? DEFAULT_QPS, burst: options.burst ?? DEFAULT_BURST, clock: options.clock });
    this.requests = new Counter({
      name: "vireo_kube_requests_total",
      help: "Requests to the Kubernetes API server, by verb, resource and HTTP status code.",
      labelNames: ["verb", "resource", "code"] as const,
      registers: options.registry ? [options.registry] : [],
    });
  }

  /** Runs one API request under the rate limit and counts it. */
  async call<T>(verb: Verb, resource: string, request: () => Promise<T>): Promise<T> {
    await this.bucket.take();
    if (verb === "patch" || verb === "create" || verb === "update" || verb === "delete") this.writes++;
    try {
      const result = await request();
      this.requests.inc({ verb, resource, code: "200" });
      return result;
    } catch (error) {
      this.requests.inc({ verb, resource, code: String(statusOf(error) ?? "error") });
      throw error;
    }
  }

  /** Writes (patch, create, update, delete) sent so far: what the density benchmark reports per VM. */
  writeCount(): number {
    return this.writes;
  }

  /** The server's base URL of the current context. */
  server(): string {
    return this.config.getCurrentCluster()?.server ?? "";
  }
}

/**
 * A KubeConfig whose requests share connections. @kubernetes/client-node 2.0 builds a new undici Agent
 * for every request, so every API call pays a fresh TLS handshake; under load that is most of a
 * controller's CPU. Agents are kept per distinct TLS configuration (a rotated client certificate
 * makes a new one), as client-go keeps its transports.
 */
class PooledKubeConfig extends KubeConfig {
  private readonly dispatchers = new Map<string, unknown>();

  constructor() {
    super();
    const self = this as unknown as { createDispatcher: (cluster: unknown, options: unknown) => unknown };
    const build = self.createDispatcher.bind(this);
    self.createDispatcher = (cluster, options) => {
      const key = fingerprint(cluster, options);
      let dispatcher = this.dispatchers.get(key);
      if (dispatcher === undefined) {
        dispatcher = build(cluster, options);
        this.dispatchers.set(key, dispatcher);
      }
      return dispatcher;
    };
  }
}

/** What makes two TLS configurations the same, cheaply: certificate material is hashed, not serialized. */
function fingerprint(cluster: unknown, options: unknown): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(cluster));
  for (const [field, value] of Object.entries((options ?? {}) as Record<string, unknown>)) {
    hash.update(field);
    if (value instanceof Uint8Array) hash.update(value);
    else hash.update(String(value));
  }
  return hash.digest("hex");
}

export function loadKubeConfig(path?: string): KubeConfig {
  const config = new PooledKubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  if (!config.getCurrentCluster()) throw new Error(path ? `kubeconfig ${path} has no current cluster` : "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
  return config;
}

/** A failed API call in one line: the status code and the server's own message, not the whole response. */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
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
  if (error instanceof ApiException) return error.code;
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
