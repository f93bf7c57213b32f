// A HypervisorProvider that reaches `vireo hostsim` over HTTP. Refusals come back as the same
// ProviderError codes the in-process simulator throws; a simulator that cannot be reached, or answers
// too late, is `Unavailable`, which the controller already treats as "try again later".

import type { MigrationSettings } from "../../core/migration.ts";
import type { ReplicationSettings } from "../../core/replication.ts";
import type { FaultToleranceSettings } from "../../core/fault-tolerance.ts";
import type { ConversionSettings } from "../../core/conversion.ts";
import type { DiskLockView, GroundTruth } from "../sim/index.ts";
import { ProviderError } from "../provider.ts";
import type { FaultInjector, HypervisorProvider, OutOfBandChanges } from "../provider.ts";
import type { HostConfig, Observation, VmConfig, VmObservation } from "../../core/observation.ts";
import type { ProviderTime } from "./synced-clock.ts";
import { API_PREFIX, MAX_WATCH_SECONDS, TIME_HEADER, TIME_SCALE_HEADER, isProviderErrorCode, vmPath } from "./wire.ts";
import type { ClockBody, ObservationBody } from "./wire.ts";

export const DEFAULT_TIMEOUT_MS = 10_000;

export interface HttpProviderOptions {
  /** Where hostsim listens, e.g. http://127.0.0.1:9440. */
  url: string;
  /** The bearer token; omitted only for a hostsim started with --insecure-no-auth. */
  token?: string;
  /** How long one request may take before it counts as Unavailable. */
  timeoutMs?: number;
}

/** Hostsim refused the token: retrying will not help until the configuration is fixed. */
export class HostsimAuthError extends ProviderError {
  constructor(message: string) {
    super("Unavailable", message);
    this.name = "HostsimAuthError";
  }
}

/** What a long-poll of the observation returns: the snapshot and the world's revision it was taken at. */
export interface WatchedObservation {
  revision: number;
  observation: Observation;
}

/** Told the provider's time with every observation, with the local time (ms, monotonic) it was true at. */
export type ProviderTimeListener = (time: ProviderTime, localAt: number) => void;

export class HttpProvider implements HypervisorProvider, FaultInjector, OutOfBandChanges {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly timeListeners = new Set<ProviderTimeListener>();

  constructor(options: HttpProviderOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch (error) {
      throw new RangeError(`provider URL ${JSON.stringify(options.url)} is not a URL`, { cause: error });
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new RangeError(`provider URL ${options.url} must be http:// or https://`);
    this.url = parsed.href.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Calls `listener` with the provider's time whenever an observation (or the clock) is read; returns its
   * removal. Actions do not count: a clock that moved on without the heartbeats that go with it would
   * make them look stale until the next observation.
   */
  onProviderTime(listener: ProviderTimeListener): () => void {
    this.timeListeners.add(listener);
    return () => { this.timeListeners.delete(listener); };
  }

  async observe(): Promise<Observation> {
    return withoutRevision(await this.request<ObservationBody>("GET", "/observation", { tellsTime: true }));
  }

  /**
   * The observation as soon as the world's revision exceeds `afterRevision`, or after `timeoutSeconds`
   * (at most 60) with nothing new: a long-poll for users that want changes rather than a poll each second.
   */
  async watchObservation(afterRevision: number, timeoutSeconds = MAX_WATCH_SECONDS): Promise<WatchedObservation> {
    const query = `?afterRevision=${afterRevision}&timeoutSeconds=${timeoutSeconds}`;
    const seconds = Math.min(Math.max(timeoutSeconds, 0), MAX_WATCH_SECONDS);
    const body = await this.request<ObservationBody>("GET", `/observation${query}`, { tellsTime: true, timeoutMs: seconds * 1000 + this.timeoutMs });
    return { revision: body.revision, observation: withoutRevision(body) };
  }

  /** The provider's clock and time scale. */
  async clock(): Promise<ProviderTime> {
    const body = await this.request<ClockBody>("GET", "/clock", { tellsTime: true });
    return { now: body.now, timeScale: body.timeScale };
  }

  async registerHost(name: string, config: HostConfig): Promise<void> {
    await this.request("PUT", `/hosts/${encodeURIComponent(name)}`, { body: config });
  }

  async unregisterHost(name: string): Promise<void> {
    await this.request("DELETE", `/hosts/${encodeURIComponent(name)}`);
  }

  async startVm(id: string, host: string, config: VmConfig): Promise<VmObservation> {
    return this.request<VmObservation>("POST", `/vms/${pathOf(id)}/start`, { body: { host, config } });
  }

  async stopVm(id: string, mode: "Shutdown" | "PowerOff", options: { onHost?: string } = {}): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/stop`, { body: { mode, ...(options.onHost !== undefined ? { onHost: options.onHost } : {}) } });
  }

  async removeVm(id: string): Promise<void> {
    await this.request("DELETE", `/vms/${pathOf(id)}`);
  }

  async migrateVm(id: string, target: string, options: { key: string; settings: MigrationSettings }): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/migrate`, { body: { target, key: options.key, settings: options.settings } });
  }

  async cancelMigration(id: string, key: string): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/cancel-migration`, { body: { key } });
  }

  async resetVm(id: string, key: string): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/reset`, { body: { key } });
  }

  async replicateVm(id: string, settings: ReplicationSettings): Promise<void> {
    await this.request("PUT", `/vms/${pathOf(id)}/replication`, { body: settings });
  }

  async stopReplication(id: string): Promise<void> {
    await this.request("DELETE", `/vms/${pathOf(id)}/replication`);
  }

  async syncReplica(id: string, key: string): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/replication/sync`, { body: { key } });
  }

  async recoverVm(id: string, host: string, config: VmConfig, options: { replicaOf: string; instanceAt?: number }): Promise<VmObservation> {
    const body = { host, config, replicaOf: options.replicaOf, ...(options.instanceAt !== undefined ? { instanceAt: options.instanceAt } : {}) };
    return this.request<VmObservation>("POST", `/vms/${pathOf(id)}/recover`, { body });
  }

  async protectVm(id: string, host: string, options: { key: string; settings: FaultToleranceSettings }): Promise<void> {
    await this.request("PUT", `/vms/${pathOf(id)}/secondary`, { body: { host, key: options.key, settings: options.settings } });
  }

  async unprotectVm(id: string): Promise<void> {
    await this.request("DELETE", `/vms/${pathOf(id)}/secondary`);
  }

  async convertVm(id: string, target: string, config: VmConfig, settings: ConversionSettings): Promise<void> {
    await this.request("POST", `/vms/${pathOf(id)}/convert`, { body: { target, config, settings } });
  }

  // ------------------------------------------------------------ simulator-only: faults and inspection

  crashHost(name: string): Promise<void> {
    return this.hostEvent(name, "crash");
  }

  recoverHost(name: string): Promise<void> {
    return this.hostEvent(name, "recover");
  }

  isolateHost(name: string): Promise<void> {
    return this.hostEvent(name, "isolate");
  }

  healIsolation(name: string): Promise<void> {
    return this.hostEvent(name, "heal");
  }

  async setStoragePathsUp(name: string, up: number, datastore?: string): Promise<void> {
    await this.request("PUT", `/sim/hosts/${encodeURIComponent(name)}/storage-paths`, { body: datastore === undefined ? { up } : { up, datastore } });
  }

  async partitionHosts(names: string[], options: { storage?: boolean } = {}): Promise<void> {
    await this.request("POST", "/sim/partition", { body: options.storage === true ? { hosts: names, storage: true } : { hosts: names } });
  }

  async healPartition(names: string[]): Promise<void> {
    await this.request("POST", "/sim/partition/heal", { body: { hosts: names } });
  }

  async slowHost(name: string, factor: number): Promise<void> {
    await this.request("PUT", `/sim/hosts/${encodeURIComponent(name)}/slowdown`, { body: { factor } });
  }

  async healSlowHost(name: string): Promise<void> {
    await this.request("DELETE", `/sim/hosts/${encodeURIComponent(name)}/slowdown`);
  }

  guestShutdown(id: string): Promise<void> {
    return this.vmEvent(id, "guest-shutdown");
  }

  crashVm(id: string): Promise<void> {
    return this.vmEvent(id, "crash");
  }

  hangGuest(id: string): Promise<void> {
    return this.vmEvent(id, "hang");
  }

  healGuestHang(id: string): Promise<void> {
    return this.vmEvent(id, "heal-hang");
  }

  adminPowerOff(id: string): Promise<void> {
    return this.vmEvent(id, "power-off");
  }

  adminPowerOn(id: string): Promise<void> {
    return this.vmEvent(id, "power-on");
  }

  async adminMove(id: string, host: string): Promise<void> {
    await this.request("POST", `/sim/vms/${pathOf(id)}/move`, { body: { host } });
  }

  async adminSetMemory(id: string, memoryMiB: number): Promise<void> {
    await this.request("PUT", `/sim/vms/${pathOf(id)}/memory`, { body: { memoryMiB } });
  }

  async adminSetNetworks(id: string, networks: string[]): Promise<void> {
    await this.request("PUT", `/sim/vms/${pathOf(id)}/networks`, { body: { networks } });
  }

  async adminCreateVm(id: string, host: string, spec: { cpu: number; memoryMiB: number; networks?: string[] }): Promise<void> {
    await this.request("POST", `/sim/vms/${pathOf(id)}/create`, { body: { host, ...spec } });
  }

  groundTruth(): Promise<GroundTruth> {
    return this.request<GroundTruth>("GET", "/sim/ground-truth");
  }

  diskLocks(): Promise<DiskLockView[]> {
    return this.request<DiskLockView[]>("GET", "/sim/disk-locks");
  }

  // ------------------------------------------------------------ internals

  private async hostEvent(name: string, event: string): Promise<void> {
    await this.request("POST", `/sim/hosts/${encodeURIComponent(name)}/${event}`);
  }

  private async vmEvent(id: string, event: string): Promise<void> {
    await this.request("POST", `/sim/vms/${pathOf(id)}/${event}`);
  }

  private async request<T>(method: string, path: string, options: { body?: unknown; timeoutMs?: number; tellsTime?: boolean } = {}): Promise<T> {
    const { body, timeoutMs = this.timeoutMs } = options;
    const target = `${this.url}${API_PREFIX}${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token !== undefined) headers["authorization"] = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const sentAt = performance.now();
    let response: Response;
    let text: string;
    try {
      response = await fetch(target, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const localAt = (sentAt + performance.now()) / 2;
      text = await response.text();
      if (response.ok && options.tellsTime) this.noteProviderTime(response.headers, localAt);
    } catch (error) {
      throw new ProviderError("Unavailable", `hostsim at ${this.url} did not answer ${method} ${API_PREFIX}${path}: ${describe(error)}`, { cause: error });
    }
    if (!response.ok) throw refusal(response.status, text, `${method} ${API_PREFIX}${path}`);
    if (text.length === 0) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new ProviderError("Unavailable", `hostsim answered ${method} ${API_PREFIX}${path} with a body that is not JSON`, { cause: error });
    }
  }

  private noteProviderTime(headers: Headers, localAt: number): void {
    const now = Number(headers.get(TIME_HEADER));
    const timeScale = Number(headers.get(TIME_SCALE_HEADER));
    if (!headers.has(TIME_HEADER) || !Number.isFinite(now) || !(timeScale > 0)) return;
    for (const listener of this.timeListeners) listener({ now, timeScale }, localAt);
  }
}

function pathOf(id: string): string {
  try {
    return vmPath(id);
  } catch (error) {
    throw new ProviderError("Invalid", (error as Error).message, { cause: error });
  }
}

function withoutRevision(body: ObservationBody): Observation {
  const { revision: _revision, ...observation } = body;
  return observation;
}

/** The ProviderError an error response stands for: the server's own code when it is one of the provider's. */
function refusal(status: number, text: string, what: string): ProviderError {
  let code: unknown;
  let message = text.trim() || `HTTP ${status}`;
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    code = body.code;
    if (typeof body.message === "string") message = body.message;
  } catch {
    // Not one of hostsim's JSON errors (a proxy in between, perhaps): the status and text say enough.
    code = undefined;
  }
  if (isProviderErrorCode(code)) return new ProviderError(code, message);
  if (status === 401) return new HostsimAuthError(`hostsim refused ${what}: ${message} (check the token file)`);
  // Any other 4xx is a request hostsim could not take; a 5xx is hostsim failing, which may pass.
  return new ProviderError(status >= 500 ? "Unavailable" : "Invalid", `hostsim refused ${what} (HTTP ${status}): ${message}`);
}

/** The innermost reason of a failed fetch ("connect ECONNREFUSED …", "…aborted due to timeout"). */
function describe(error: unknown): string {
  let reason = error;
  while (reason instanceof Error && reason.cause instanceof Error) reason = reason.cause;
  return reason instanceof Error ? reason.message : String(reason);
}
