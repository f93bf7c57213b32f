// The API server, as Vireo talks to it: one KubeConfig, a client-side rate limit (QPS and burst, as
// client-go has), and every request counted by verb, resource and status code.

import { ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { Counter, type Registry } from "prom-client";
import type { Kind } from "../../api/types.ts";
import { GROUP, VERSION } from "../../api/types.ts";
import { crdFor, isNamespaced } from "../../api/schema.ts";
import type { Clock } from "../../engine/clock.ts";
import { TokenBucket } from "../../engine/ratelimit.ts";

/** client-go's defaults (5 qps, burst 10) starve a controller of thousands of VMs; controller-runtime uses 20/30. */
export const DEFAULT_QPS = 200;
export const DEFAULT_BURST = 400;

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

export function loadKubeConfig(path?: string): KubeConfig {
  const config = new KubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  if (!config.getCurrentCluster()) throw new Error(path ? `kubeconfig ${path} has no current cluster` : "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
  return config;
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
