// What the kube-apiserver does to a custom resource before validating it, driven by the CRD's structural
// schema: unknown fields are refused (strict field validation, as `kubectl apply` asks for by default)
// and pruned, nulls of non-nullable fields are dropped, then `default`s are filled in. Also the
// list-type checks (`x-kubernetes-list-type: set|map`) the API server makes besides OpenAPI validation.

/** One node of a CRD's openAPIV3Schema (the subset of keywords structural schemas allow). */
export interface SchemaNode {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  required?: string[];
  default?: unknown;
  nullable?: boolean;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  /** OpenAPI v3.0: the minimum (maximum) itself is excluded. */
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  "x-kubernetes-validations"?: ValidationRule[];
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

export interface ValidationRule {
  rule: string;
  message?: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** A validation error at a field, in the API server's path notation (`spec.disks[0].sizeGiB`). */
export interface FieldError {
  path: string;
  message: string;
}

// Map keys are joined like properties (`spec.hostSelector.matchLabels.app`), as the API server's OpenAPI
// validation of custom resources prints them.
export function childPath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}.${name}`;
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** Message of the API server for a field the schema does not declare (server-side apply wording). */
export const UNKNOWN_FIELD = "field not declared in schema";

// Manifests and defaults are plain data (parsed YAML or JSON); copying them by hand is several times
// faster than structuredClone, which matters when thousands of manifests are validated at start-up.
export function cloneJson<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = cloneJson((value as Record<string, unknown>)[key]);
  return out as T;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// An object node with neither properties nor additionalProperties only occurs for `metadata`, which the
// API server handles by its own rules (see schema.ts); it is left alone here.
function isOpaqueObject(schema: SchemaNode): boolean {
  return schema["x-kubernetes-preserve-unknown-fields"] === true || (schema.properties === undefined && schema.additionalProperties === undefined);
}

/**
 * Removes fields the schema does not declare from `value` (mutating it), reporting each as an error,
 * and drops nulls where the schema does not allow them (silently, as the API server does).
 */
export function pruneUnknownFields(value: unknown, schema: SchemaNode, path: string, errors: FieldError[]): void {
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item, i) => pruneUnknownFields(item, schema.items as SchemaNode, indexPath(path, i), errors));
    return;
  }
  if (!isPlainObject(value) || schema.type !== "object" || isOpaqueObject(schema)) return;
  for (const [key, child] of Object.entries(value)) {
    const childSchema = schema.properties?.[key] ?? (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
    if (!childSchema) {
      if (schema.additionalProperties !== true) {
        errors.push({ path: childPath(path, key), message: UNKNOWN_FIELD });
        delete value[key];
      }
      continue;
    }
    if (child === null && !childSchema.nullable) {
      delete value[key];
      continue;
    }
    pruneUnknownFields(child, childSchema, childPath(path, key), errors);
  }
}

function children(schema: SchemaNode): SchemaNode[] {
  const out = Object.values(schema.properties ?? {});
  if (schema.items) out.push(schema.items);
  if (typeof schema.additionalProperties === "object") out.push(schema.additionalProperties);
  return out;
}

/**
 * The schema nodes at or above a node that satisfies `test`: the walks below skip every other subtree,
 * which keeps validating thousands of manifests cheap.
 */
export function nodesLeadingTo(schema: SchemaNode, test: (node: SchemaNode) => boolean, into = new Set<SchemaNode>()): Set<SchemaNode> {
  let below = false;
  for (const child of children(schema)) {
    nodesLeadingTo(child, test, into);
    below = below || into.has(child);
  }
  if (below || test(schema)) into.add(schema);
  return into;
}

export const hasDefault = (node: SchemaNode): boolean => node.default !== undefined;
export const hasListType = (node: SchemaNode): boolean => node["x-kubernetes-list-type"] === "set" || node["x-kubernetes-list-type"] === "map";

/**
 * Fills in `default`s for absent fields, recursively, including inside defaulted values and array
 * items (mutating `value`), as the API server's structural defaulting does. `within` holds the nodes
 * that lead to a default (see nodesLeadingTo).
 */
export function applyDefaults(value: unknown, schema: SchemaNode, within: ReadonlySet<SchemaNode>): void {
  if (!within.has(schema)) return;
  if (Array.isArray(value)) {
    if (schema.items) for (const item of value) applyDefaults(item, schema.items, within);
    return;
  }
  if (!isPlainObject(value)) return;
  if (schema.properties) {
    for (const key in schema.properties) {
      const propSchema = schema.properties[key] as SchemaNode;
      if (value[key] === undefined && propSchema.default !== undefined) value[key] = cloneJson(propSchema.default);
      if (value[key] !== undefined) applyDefaults(value[key], propSchema, within);
    }
  } else if (typeof schema.additionalProperties === "object") {
    for (const child of Object.values(value)) applyDefaults(child, schema.additionalProperties, within);
  }
}

/**
 * Duplicate entries in `set` lists and duplicate keys in `map` lists, reported at the later entry.
 * `within` holds the nodes that lead to a set or map list (see nodesLeadingTo).
 */
export function listTypeErrors(value: unknown, schema: SchemaNode, path: string, errors: FieldError[], within: ReadonlySet<SchemaNode>): void {
  if (!within.has(schema)) return;
  if (Array.isArray(value)) {
    const listType = schema["x-kubernetes-list-type"];
    if (listType === "set") duplicates(value, (item) => JSON.stringify(item), path, errors, (item) => JSON.stringify(item));
    if (listType === "map") {
      const keys = schema["x-kubernetes-list-map-keys"] ?? [];
      const keyOf = (item: unknown) => JSON.stringify(keys.map((k) => (isPlainObject(item) ? item[k] : undefined)));
      const shown = (item: unknown) => JSON.stringify(Object.fromEntries(keys.map((k) => [k, isPlainObject(item) ? item[k] : undefined])));
      duplicates(value, keyOf, path, errors, shown);
    }
    if (schema.items) value.forEach((item, i) => listTypeErrors(item, schema.items as SchemaNode, indexPath(path, i), errors, within));
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const declared = schema.properties?.[key];
    if (declared) listTypeErrors(child, declared, childPath(path, key), errors, within);
    else if (typeof schema.additionalProperties === "object") listTypeErrors(child, schema.additionalProperties, childPath(path, key), errors, within);
  }
}

function duplicates(list: unknown[], keyOf: (item: unknown) => string, path: string, errors: FieldError[], shown: (item: unknown) => string): void {
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const key = keyOf(item);
    if (seen.has(key)) errors.push({ path: indexPath(path, i), message: `Duplicate value: ${shown(item)}` });
    seen.add(key);
  });
}
