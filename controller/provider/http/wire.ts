// The wire format of `vireo hostsim`'s HTTP API, shared by the server and the client: paths, headers,
// the mapping of ProviderError codes to HTTP statuses, and the shape checks a request body must pass
// before the simulator sees it (the simulator checks meaning; this checks that the JSON has the shape).

import type { ProviderErrorCode } from "../provider.ts";
import { migrationSettingsProblem } from "../../core/migration.ts";
import type { MigrationSettings } from "../../core/migration.ts";
import type { HostConfig, Observation, VmConfig } from "../../core/observation.ts";
import type { ReplicationSettings } from "../../core/replication.ts";
import type { FaultToleranceSettings } from "../../core/fault-tolerance.ts";
import type { ConversionSettings } from "../../core/conversion.ts";
import { copyReplicationSettings, replicationSettingsProblem } from "../sim/replication.ts";
import { copyFaultToleranceSettings, faultToleranceSettingsProblem } from "../sim/fault-tolerance.ts";
import { conversionSettingsProblem } from "../sim/conversion.ts";
import { FIRMWARES, NIC_MODELS } from "../sim/vms.ts";
import { hostNameProblem, vmIdProblem } from "./names.ts";

export const API_PREFIX = "/v1";
/** Request bodies above this are refused with 413: the largest real one, a VM config, is a few KiB. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** The longest a long-poll of the observation waits for a change. */
export const MAX_WATCH_SECONDS = 60;

/** Every API response carries the provider's time and time scale, so each exchange keeps clocks in step. */
export const TIME_HEADER = "vireo-time";
export const TIME_SCALE_HEADER = "vireo-time-scale";

/** `GET /v1/observation`: the observation (with `migrations` and `replicas`) and the world's revision it was taken at. */
export type ObservationBody = Observation & { revision: number };

/** `GET /v1/clock`. */
export interface ClockBody {
  now: number;
  timeScale: number;
}

/** The body of every error response. `code` is a ProviderErrorCode or one of the HTTP-level codes. */
export interface ErrorBody {
  code: ProviderErrorCode | HttpErrorCode;
  message: string;
}

/** Refusals that come from HTTP itself rather than from the simulated hosts. */
export type HttpErrorCode = "BadRequest" | "Unauthorized" | "RouteNotFound" | "MethodNotAllowed" | "PayloadTooLarge" | "Internal";

export const PROVIDER_ERROR_STATUS: Readonly<Record<ProviderErrorCode, number>> = {
  NotFound: 404,
  // A state conflict: the same request may succeed once the world has moved on.
  Conflict: 409,
  LockHeld: 409,
  // Also a state conflict, not a bad request: the host may have room once other VMs stop.
  InsufficientResources: 409,
  // The request is well-formed JSON but names something no host can do (a missing datastore, a bad field).
  Invalid: 422,
  // The target cannot run the guest as it is (another CPU vendor, a missing feature): a state conflict.
  Incompatible: 409,
  Unavailable: 503,
};

const PROVIDER_ERROR_CODES = new Set<string>(Object.keys(PROVIDER_ERROR_STATUS));

export function isProviderErrorCode(code: unknown): code is ProviderErrorCode {
  return typeof code === "string" && PROVIDER_ERROR_CODES.has(code);
}

/** A request the server refuses before the simulator sees it; becomes an ErrorBody with `status`. */
export class WireError extends Error {
  readonly status: number;
  readonly code: ErrorBody["code"];
  /** Response headers the refusal calls for (Allow on a 405). */
  readonly headers: Record<string, string>;
  constructor(status: number, code: ErrorBody["code"], message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "WireError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The two path segments of a VM id `namespace/name`, the form every Vireo VM id takes. */
export function vmPath(id: string): string {
  if (!isVmId(id)) throw new RangeError(`VM id ${JSON.stringify(id)} is not of the form namespace/name`);
  const slash = id.indexOf("/");
  return `${encodeURIComponent(id.slice(0, slash))}/${encodeURIComponent(id.slice(slash + 1))}`;
}

function isVmId(id: string): boolean {
  const slash = id.indexOf("/");
  return slash > 0 && slash < id.length - 1 && id.indexOf("/", slash + 1) === -1;
}

// ------------------------------------------------------------ shape checks of request bodies

type Fields = Record<string, unknown>;

function invalid(path: string, problem: string): WireError {
  return new WireError(422, "Invalid", `${path} ${problem}`);
}

function object(value: unknown, path: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(path, "must be an object");
  return value as Fields;
}

function string(fields: Fields, name: string, path: string): string {
  const value = fields[name];
  if (typeof value !== "string") throw invalid(`${path}.${name}`, "must be a string");
  return value;
}

function number(fields: Fields, name: string, path: string): number {
  const value = fields[name];
  if (typeof value !== "number" || !Number.isFinite(value)) throw invalid(`${path}.${name}`, "must be a number");
  return value;
}

function list(fields: Fields, name: string, path: string): unknown[] {
  const value = fields[name];
  if (!Array.isArray(value)) throw invalid(`${path}.${name}`, "must be a list");
  return value;
}

function strings(fields: Fields, name: string, path: string): string[] {
  return list(fields, name, path).map((item, i) => {
    if (typeof item !== "string") throw invalid(`${path}.${name}[${i}]`, "must be a string");
    return item;
  });
}

export function hostConfigBody(body: unknown): HostConfig {
  const fields = object(body, "body");
  const cpu = object(fields.cpu, "body.cpu");
  const labels = object(fields.labels, "body.labels");
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== "string") throw invalid(`body.labels[${JSON.stringify(key)}]`, "must be a string");
  }
  const config: HostConfig = {
    hypervisor: string(fields, "hypervisor", "body") as HostConfig["hypervisor"],
    cpu: {
      cores: number(cpu, "cores", "body.cpu"),
      vendor: string(cpu, "vendor", "body.cpu") as HostConfig["cpu"]["vendor"],
      features: strings(cpu, "features", "body.cpu"),
      overcommitRatio: number(cpu, "overcommitRatio", "body.cpu"),
    },
    memoryMiB: number(fields, "memoryMiB", "body"),
    datastores: strings(fields, "datastores", "body"),
    networks: strings(fields, "networks", "body"),
    storagePaths: number(fields, "storagePaths", "body"),
    labels: labels as Record<string, string>,
  };
  if (cpu.model !== undefined) config.cpu.model = string(cpu, "model", "body.cpu");
  return config;
}

const ISOLATION_RESPONSES: readonly string[] = ["LeavePoweredOn", "PowerOff", "Shutdown"];

export function startBody(body: unknown): { host: string; config: VmConfig } {
  const fields = object(body, "body");
  return { host: hostName(fields, "host", "body"), config: vmConfigBody(fields.config, "body.config") };
}

/** A VM's description, as `start`, `recover` and `convert` take it. */
function vmConfigBody(value: unknown, path: string): VmConfig {
  const config = object(value, path);
  const workload = object(config.workload, `${path}.workload`);
  const optionalRate = (name: "dirtyRateMiBps" | "diskWriteRateMiBps") =>
    (workload[name] !== undefined ? { [name]: number(workload, name, `${path}.workload`) } : {});
  const vm = {
    cpu: number(config, "cpu", path),
    memoryMiB: number(config, "memoryMiB", path),
    cpuFeatures: strings(config, "cpuFeatures", path),
    disks: list(config, "disks", path).map((item, i) => {
      const disk = object(item, `${path}.disks[${i}]`);
      const at = `${path}.disks[${i}]`;
      return { name: string(disk, "name", at), sizeGiB: number(disk, "sizeGiB", at), datastore: string(disk, "datastore", at) };
    }),
    nics: list(config, "nics", path).map((item, i) => {
      const nic = object(item, `${path}.nics[${i}]`);
      const at = `${path}.nics[${i}]`;
      const model = nic.model === undefined ? {} : { model: oneOf(nic, "model", at, NIC_MODELS) };
      return { network: string(nic, "network", at), macAddress: string(nic, "macAddress", at), ...model };
    }),
    workload: {
      profile: string(workload, "profile", `${path}.workload`) as VmConfig["workload"]["profile"],
      cpuPercent: number(workload, "cpuPercent", `${path}.workload`),
      ...optionalRate("dirtyRateMiBps"),
      ...optionalRate("diskWriteRateMiBps"),
    },
  } as VmConfig;
  if (config.isolationResponse !== undefined) {
    const response = string(config, "isolationResponse", path);
    if (!ISOLATION_RESPONSES.includes(response)) throw invalid(`${path}.isolationResponse`, `must be one of ${ISOLATION_RESPONSES.join(", ")}`);
    vm.isolationResponse = response as NonNullable<VmConfig["isolationResponse"]>;
  }
  if (config.managedBy !== undefined) vm.managedBy = string(config, "managedBy", path);
  if (config.firmware !== undefined) vm.firmware = oneOf(config, "firmware", path, FIRMWARES);
  return vm;
}

function oneOf<T extends string>(fields: Fields, name: string, path: string, values: readonly T[]): T {
  const value = string(fields, name, path);
  if (!(values as readonly string[]).includes(value)) throw invalid(`${path}.${name}`, `must be one of ${values.join(", ")}`);
  return value as T;
}

export function stopBody(body: unknown): { mode: "Shutdown" | "PowerOff"; onHost?: string } {
  const fields = object(body, "body");
  const mode = string(fields, "mode", "body");
  if (mode !== "Shutdown" && mode !== "PowerOff") throw invalid("body.mode", `must be Shutdown or PowerOff, got ${JSON.stringify(mode)}`);
  return fields.onHost === undefined ? { mode } : { mode, onHost: string(fields, "onHost", "body") };
}

export function storagePathsBody(body: unknown): { up: number; datastore?: string } {
  const fields = object(body, "body");
  const up = number(fields, "up", "body");
  return fields.datastore === undefined ? { up } : { up, datastore: string(fields, "datastore", "body") };
}

export function resetBody(body: unknown): { key: string } {
  return { key: string(object(body, "body"), "key", "body") };
}

export function slowdownBody(body: unknown): { factor: number } {
  return { factor: number(object(body, "body"), "factor", "body") };
}

export function hostsBody(body: unknown): { hosts: string[] } {
  return { hosts: hostNames(object(body, "body"), "hosts", "body") };
}

/** `POST /v1/sim/partition`: the hosts, and whether their storage is cut off from the observer too. */
export function partitionBody(body: unknown): { hosts: string[]; storage: boolean } {
  const fields = object(body, "body");
  if (fields.storage !== undefined && typeof fields.storage !== "boolean") throw invalid("body.storage", "must be true or false");
  return { hosts: hostNames(fields, "hosts", "body"), storage: fields.storage === true };
}

export function moveBody(body: unknown): { host: string } {
  return { host: hostName(object(body, "body"), "host", "body") };
}

export function memoryBody(body: unknown): { memoryMiB: number } {
  return { memoryMiB: number(object(body, "body"), "memoryMiB", "body") };
}

export function networksBody(body: unknown): { networks: string[] } {
  return { networks: strings(object(body, "body"), "networks", "body") };
}

export function createBody(body: unknown): { host: string; cpu: number; memoryMiB: number; networks?: string[] } {
  const fields = object(body, "body");
  return {
    host: hostName(fields, "host", "body"),
    cpu: number(fields, "cpu", "body"),
    memoryMiB: number(fields, "memoryMiB", "body"),
    ...(fields.networks !== undefined ? { networks: strings(fields, "networks", "body") } : {}),
  };
}

function hostName(fields: Fields, name: string, path: string): string {
  const value = string(fields, name, path);
  const problem = hostNameProblem(value);
  if (problem !== undefined) throw invalid(`${path}.${name}`, problem);
  return value;
}

function hostNames(fields: Fields, name: string, path: string): string[] {
  return strings(fields, name, path).map((value, i) => {
    const problem = hostNameProblem(value);
    if (problem !== undefined) throw invalid(`${path}.${name}[${i}]`, problem);
    return value;
  });
}

function key(fields: Fields, path: string): string {
  const value = string(fields, "key", path);
  if (value.length === 0) throw invalid(`${path}.key`, "must not be empty");
  return value;
}

/** `POST /v1/vms/:namespace/:name/migrate`: where to, under which key, with which settings (all of them). */
export function migrateBody(body: unknown): { target: string; key: string; settings: MigrationSettings } {
  const fields = object(body, "body");
  const settings = object(fields.settings, "body.settings");
  const problem = migrationSettingsProblem(settings);
  if (problem !== undefined) throw new WireError(422, "Invalid", `body.settings.${problem}`);
  return {
    target: hostName(fields, "target", "body"),
    key: key(fields, "body"),
    // Only the settings a migration has: anything else in the object stays behind.
    settings: {
      bandwidthMiBps: settings.bandwidthMiBps as number,
      downtimeLimitMs: settings.downtimeLimitMs as number,
      maxRounds: settings.maxRounds as number,
      noProgressTimeoutMs: settings.noProgressTimeoutMs as number,
      completionTimeoutPerGiBMs: settings.completionTimeoutPerGiBMs as number,
      autoConverge: settings.autoConverge as boolean,
    },
  };
}

/** `POST /v1/vms/:namespace/:name/cancel-migration`. */
export function cancelMigrationBody(body: unknown): { key: string } {
  return { key: key(object(body, "body"), "body") };
}

/** `PUT /v1/vms/:namespace/:name/replication`: the replication settings, every field of them. */
export function replicationBody(body: unknown): ReplicationSettings {
  const problem = replicationSettingsProblem(body);
  if (problem !== undefined) throw new WireError(422, "Invalid", problem === "must be an object" ? `body ${problem}` : `body.${problem}`);
  // Only the settings replication has: anything else in the object stays behind.
  return copyReplicationSettings(body as ReplicationSettings);
}

/** `POST /v1/vms/:namespace/:name/replication/sync`. */
export function syncReplicaBody(body: unknown): { key: string } {
  return { key: key(object(body, "body"), "body") };
}

/** `POST /v1/vms/:namespace/:name/recover`: where, as what, from which replica and instance. */
export function recoverBody(body: unknown): { host: string; config: VmConfig; replicaOf: string; instanceAt?: number } {
  const fields = object(body, "body");
  const replicaOf = string(fields, "replicaOf", "body");
  const problem = vmIdProblem(replicaOf);
  if (problem !== undefined) throw invalid("body.replicaOf", problem);
  return {
    host: hostName(fields, "host", "body"),
    config: vmConfigBody(fields.config, "body.config"),
    replicaOf,
    ...(fields.instanceAt !== undefined ? { instanceAt: number(fields, "instanceAt", "body") } : {}),
  };
}

/** `PUT /v1/vms/:namespace/:name/secondary`: on which host, under which key, with every FT setting. */
export function protectBody(body: unknown): { host: string; key: string; settings: FaultToleranceSettings } {
  const fields = object(body, "body");
  const problem = faultToleranceSettingsProblem(fields.settings);
  if (problem !== undefined) throw new WireError(422, "Invalid", `body.settings${problem === "must be an object" ? " " : "."}${problem}`);
  return {
    host: hostName(fields, "host", "body"),
    key: key(fields, "body"),
    // Only the settings fault tolerance has: anything else in the objects stays behind.
    settings: copyFaultToleranceSettings(fields.settings as FaultToleranceSettings),
  };
}

/** `POST /v1/vms/:namespace/:name/convert`: for which host, into what, under which key and at what rate. */
export function convertBody(body: unknown): { target: string; config: VmConfig; settings: ConversionSettings } {
  const fields = object(body, "body");
  const settings = object(fields.settings, "body.settings");
  const problem = conversionSettingsProblem(settings);
  if (problem !== undefined) throw new WireError(422, "Invalid", `body.settings.${problem}`);
  return {
    target: hostName(fields, "target", "body"),
    config: vmConfigBody(fields.config, "body.config"),
    settings: { key: settings.key as string, rateMiBps: settings.rateMiBps as number },
  };
}
