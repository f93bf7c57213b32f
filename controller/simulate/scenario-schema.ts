// The scenario file's own schema (not a CRD: a scenario is read by `vireo simulate`, never applied to a
// cluster). Structure is checked here with ajv; what needs the fleet (a host that exists, a selector that
// matches) is checked in scenario.ts, and the manifests inside a scenario by the CRDs as usual.

import { Ajv } from "ajv";
import type { ErrorObject } from "ajv";
import type { FaultType, Kind, LabelSelector } from "../api/types.ts";
import { KINDS } from "../api/types.ts";
import type { WorkloadProfile } from "../core/observation.ts";

/** A duration: Go-style text (`30m`, `1h30m`, `45s`) or a number of seconds. */
export type DurationText = string | number;

export interface HostTargets {
  host?: string;
  hosts?: string[];
  hostSelector?: LabelSelector;
}

export interface FaultEvent extends HostTargets {
  type: FaultType;
  /** GuestHang: the VM, `namespace/name`. */
  vm?: string;
  datastore?: string;
  paths?: number;
  includeStorage?: boolean;
  slowdownFactor?: number;
  /** How long the fault lasts, then it heals; until the end of the run when omitted. */
  duration?: DurationText;
}

export interface MaintenanceEvent extends HostTargets {
  enabled: boolean;
}

export interface RollingMaintenanceEvent extends HostTargets {
  /** Every host of this HostCluster. */
  cluster?: string;
  /** How long each host stays in maintenance once it is empty (the patching). */
  hold: DurationText;
  /** How long a host may take to empty before the rollout stops there (default 30m). */
  timeout?: DurationText;
}

export interface MigrateEvent {
  /** `namespace/name`. */
  vm: string;
  to?: string;
  mode?: "Live" | "Cold";
}

export interface WorkloadEvent {
  vms?: string[];
  vmSelector?: LabelSelector;
  namespace?: string;
  profile?: WorkloadProfile;
  cpuPercent?: number;
}

export interface DeleteEvent {
  kind: Kind;
  /** `namespace/name` for a namespaced kind, `name` for a cluster-scoped one. */
  names: string[];
}

export interface ManifestSource {
  /** Files or directories (read recursively), relative to the scenario file. */
  manifests?: string | string[];
  /** Manifests written inline. */
  objects?: unknown[];
  /** Many objects from one: `count` copies of `object`, each string's `{index}` replaced by 1…count. */
  generate?: { count: number; object: unknown }[];
}

export interface TimelineEntry {
  at: DurationText;
  note?: string;
  fault?: FaultEvent;
  maintenance?: MaintenanceEvent;
  rollingMaintenance?: RollingMaintenanceEvent;
  migrate?: MigrateEvent;
  workload?: WorkloadEvent;
  apply?: ManifestSource;
  delete?: DeleteEvent;
}

export const EVENT_ACTIONS = ["fault", "maintenance", "rollingMaintenance", "migrate", "workload", "apply", "delete"] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

export interface ScenarioDocument {
  name: string;
  description?: string;
  seed?: number;
  /** When the simulated run begins (UTC); the diurnal workload peaks around 14:00. */
  start?: string;
  duration: DurationText;
  /** How often the report samples the fleet (default 30s). */
  sampleInterval?: DurationText;
  fleet: ManifestSource;
  timeline?: TimelineEntry[];
}

const NAME = { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" };
const DURATION = { type: ["string", "integer"], minimum: 0 };
const VM_REF = { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" };
const LABEL_SELECTOR = {
  type: "object",
  additionalProperties: false,
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["key", "operator"],
        properties: {
          key: { type: "string", minLength: 1 },
          operator: { enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
          values: { type: "array", items: { type: "string" } },
        },
      },
    },
  },
};
const HOST_TARGETS = { host: NAME, hosts: { type: "array", minItems: 1, items: NAME }, hostSelector: LABEL_SELECTOR };
const MANIFEST_SOURCE = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    manifests: { anyOf: [{ type: "string", minLength: 1 }, { type: "array", minItems: 1, items: { type: "string", minLength: 1 } }] },
    objects: { type: "array", items: { type: "object" } },
    generate: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["count", "object"],
        properties: { count: { type: "integer", minimum: 1, maximum: 10000 }, object: { type: "object" } },
      },
    },
  },
};

const SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["name", "duration", "fleet"],
  properties: {
    name: NAME,
    description: { type: "string" },
    seed: { type: "integer", minimum: 0, maximum: 2147483647 },
    start: { type: "string" },
    duration: DURATION,
    sampleInterval: DURATION,
    fleet: MANIFEST_SOURCE,
    timeline: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["at"],
        properties: {
          at: DURATION,
          note: { type: "string" },
          fault: {
            type: "object",
            additionalProperties: false,
            required: ["type"],
            properties: {
              type: { enum: ["HostCrash", "NetworkIsolation", "NetworkPartition", "StoragePathLoss", "GuestHang", "SlowHost"] },
              ...HOST_TARGETS,
              vm: VM_REF,
              datastore: { type: "string", minLength: 1 },
              paths: { type: "integer", minimum: 1 },
              includeStorage: { type: "boolean" },
              slowdownFactor: { type: "number", minimum: 1 },
              duration: DURATION,
            },
          },
          maintenance: { type: "object", additionalProperties: false, required: ["enabled"], properties: { ...HOST_TARGETS, enabled: { type: "boolean" } } },
          rollingMaintenance: {
            type: "object",
            additionalProperties: false,
            required: ["hold"],
            properties: { ...HOST_TARGETS, cluster: NAME, hold: DURATION, timeout: DURATION },
          },
          migrate: { type: "object", additionalProperties: false, required: ["vm"], properties: { vm: VM_REF, to: NAME, mode: { enum: ["Live", "Cold"] } } },
          workload: {
            type: "object",
            additionalProperties: false,
            properties: {
              vms: { type: "array", minItems: 1, items: VM_REF },
              vmSelector: LABEL_SELECTOR,
              namespace: NAME,
              profile: { enum: ["Idle", "Steady", "Diurnal", "Bursty"] },
              cpuPercent: { type: "number", minimum: 0, maximum: 100 },
            },
          },
          apply: MANIFEST_SOURCE,
          delete: {
            type: "object",
            additionalProperties: false,
            required: ["kind", "names"],
            properties: { kind: { enum: [...KINDS] }, names: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } } },
          },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile<ScenarioDocument>(SCHEMA);

/** A problem with one field: its path (`timeline[2].fault.host`) and what is wrong. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** The document's structural problems, each at the most precise field ajv names. */
export function schemaProblems(document: unknown): FieldProblem[] {
  if (validate(document)) return [];
  const problems = (validate.errors ?? []).filter((e) => e.keyword !== "anyOf" && e.keyword !== "if").map(problemOf);
  // One line per field and message (a union type reports each branch).
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(`${p.path}\u0000${p.message}`) && seen.add(`${p.path}\u0000${p.message}`));
}

function problemOf(error: ErrorObject): FieldProblem {
  const path = error.instancePath.split("/").slice(1).map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((p, part) => (/^\d+$/.test(part) ? `${p}[${part}]` : p === "" ? part : `${p}.${part}`), "");
  const join = (key: string): string => (path === "" ? key : `${path}.${key}`);
  switch (error.keyword) {
    case "additionalProperties": return { path: join(String(error.params["additionalProperty"])), message: "unknown field" };
    case "required": return { path: join(String(error.params["missingProperty"])), message: "required" };
    case "enum": return { path, message: `must be one of ${(error.params["allowedValues"] as unknown[]).join(", ")}` };
    case "type": return { path, message: `must be ${String(error.params["type"]).replace(",", " or ")}` };
    default: return { path, message: error.message ?? error.keyword };
  }
}
