// Validation of manifests against the CRDs under crds/ — the same checks, in the same order and with the
// same field paths, as the kube-apiserver makes on `kubectl apply`: kind and metadata, strict field
// validation, defaulting, OpenAPI schema (ajv), list types, then the CEL rules.
import { Ajv } from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import { API_VERSION } from "./types.ts";
import type { Kind, VireoObject } from "./types.ts";
import { applyDefaults, childPath, cloneJson, hasDefault, hasListType, indexPath, listTypeErrors, nodesLeadingTo, pruneUnknownFields, UNKNOWN_FIELD } from "./defaults.ts";
import type { FieldError, SchemaNode, ValidationRule } from "./defaults.ts";
import { compileRule, rootToCel, runRule, toCel } from "./cel.ts";
import type { CompiledRule } from "./cel.ts";
import type { CelInput } from "@bufbuild/cel";

export type { FieldError, SchemaNode, ValidationRule } from "./defaults.ts";

export type ValidationResult = { ok: true; object: VireoObject } | { ok: false; errors: FieldError[] };

import { isNamespaced, kinds, openAPISchema } from "./crds.ts";
export { CRD_DIR, CrdLoadError, crdFor, isNamespaced, kindForResource, kinds, kindsInCategory, openAPISchema, printerColumns } from "./crds.ts";
export type { CustomResourceDefinition, PrinterColumn } from "./crds.ts";

// ---------------------------------------------------------------- compiled validators (once per kind)

interface CompiledKind {
  schema: SchemaNode;
  validate: ValidateFunction;
  rules: Map<SchemaNode, CompiledRule[]>;
  /** Schema nodes with CEL rules, defaults or set/map lists at or below them: each pass skips the rest. */
  ruled: Set<SchemaNode>;
  defaulted: Set<SchemaNode>;
  listTyped: Set<SchemaNode>;
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, strictTypes: false });
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
ajv.addFormat("date-time", RFC3339);
ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && Math.abs(n) <= 2 ** 31 });

/** The schema as ajv reads it: Kubernetes extensions dropped, and declared properties made exhaustive. */
function toAjvSchema(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(node)) {
    if (keyword.startsWith("x-kubernetes-") || keyword === "default" || keyword === "description") continue;
    if (keyword === "properties") {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, SchemaNode>).map(([k, v]) => [k, toAjvSchema(v)]));
    } else if ((keyword === "items" || keyword === "additionalProperties") && typeof value === "object") {
      out[keyword] = toAjvSchema(value as SchemaNode);
    } else {
      out[keyword] = value;
    }
  }
  if (node.properties && node.additionalProperties === undefined && !node["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  exclusiveBoundsAsNumbers(node, out);
  return out;
}

// OpenAPI v3.0 (the CRDs' dialect) makes exclusiveMinimum/Maximum a flag on minimum/maximum; JSON Schema
// draft 7 (ajv's) makes them the bound itself.
function exclusiveBoundsAsNumbers(node: SchemaNode, out: Record<string, unknown>): void {
  delete out.exclusiveMinimum;
  delete out.exclusiveMaximum;
  if (node.exclusiveMinimum === true && node.minimum !== undefined) {
    out.exclusiveMinimum = node.minimum;
    delete out.minimum;
  }
  if (node.exclusiveMaximum === true && node.maximum !== undefined) {
    out.exclusiveMaximum = node.maximum;
    delete out.maximum;
  }
}

const hasRules = (node: SchemaNode): boolean => (node["x-kubernetes-validations"] ?? []).length > 0;

const compiled = new Map<Kind, CompiledKind>();

function compiledFor(kind: Kind): CompiledKind {
  let entry = compiled.get(kind);
  if (!entry) {
    const schema = openAPISchema(kind);
    const ruled = nodesLeadingTo(schema, hasRules);
    const rules = new Map<SchemaNode, CompiledRule[]>();
    for (const node of ruled) {
      if (hasRules(node)) rules.set(node, (node["x-kubernetes-validations"] ?? []).map((r) => compileRule(r.rule)));
    }
    entry = {
      schema, validate: ajv.compile(toAjvSchema(schema)), rules, ruled,
      defaulted: nodesLeadingTo(schema, hasDefault), listTyped: nodesLeadingTo(schema, hasListType),
    };
    compiled.set(kind, entry);
  }
  return entry;
}

// ---------------------------------------------------------------- ajv errors in the API server's words

function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** `/spec/disks/0/sizeGiB` → `spec.disks[0].sizeGiB`, using the data to tell indexes from keys. */
function fieldPathOf(pointer: string, root: unknown): string {
  let path = "";
  let node = root;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    path = Array.isArray(node) ? indexPath(path, Number(segment)) : childPath(path, segment);
    node = (node as Record<string, unknown> | undefined)?.[segment];
  }
  return path;
}

const COMPARISONS: Record<string, string> = {
  ">=": "greater than or equal to", "<=": "less than or equal to", ">": "greater than", "<": "less than",
};

function ajvError(error: ErrorObject, root: unknown): FieldError {
  const path = fieldPathOf(error.instancePath, root);
  const p = error.params as Record<string, unknown>;
  const value = error.data;
  const body = `${path} in body`;
  switch (error.keyword) {
    case "required":
      return { path: childPath(path, String(p.missingProperty)), message: "Required value" };
    case "additionalProperties":
      return { path: childPath(path, String(p.additionalProperty)), message: UNKNOWN_FIELD };
    case "type":
      return { path, message: `Invalid value: "${jsonTypeName(value)}": ${body} must be of type ${String(p.type)}: "${jsonTypeName(value)}"` };
    case "enum":
      return { path, message: `Unsupported value: ${show(value)}: supported values: ${(p.allowedValues as unknown[]).map(show).join(", ")}` };
    case "minimum": case "maximum": case "exclusiveMinimum": case "exclusiveMaximum":
      return { path, message: `Invalid value: ${show(value)}: ${body} should be ${COMPARISONS[String(p.comparison)]} ${String(p.limit)}` };
    case "multipleOf":
      return { path, message: `Invalid value: ${show(value)}: ${body} should be a multiple of ${String(p.multipleOf)}` };
    case "pattern":
      return { path, message: `Invalid value: ${show(value)}: ${body} should match '${String(p.pattern)}'` };
    case "minLength":
      return { path, message: `Invalid value: ${show(value)}: ${body} should be at least ${String(p.limit)} chars long` };
    case "maxLength":
      return { path, message: `Too long: may not be more than ${String(p.limit)} bytes` };
    case "minItems":
      return { path, message: `Invalid value: ${(value as unknown[]).length}: ${body} should have at least ${String(p.limit)} items` };
    case "maxItems":
      return { path, message: `Too many: ${(value as unknown[]).length}: must have at most ${String(p.limit)} items` };
    case "maxProperties":
      return { path, message: `Too many: ${Object.keys(value as object).length}: must have at most ${String(p.limit)} items` };
    case "format":
      return { path, message: `Invalid value: ${show(value)}: ${body} must be of type ${String(p.format)}: ${show(value)}` };
    default:
      return { path, message: `Invalid value: ${show(value)}: ${error.message ?? error.keyword}` };
  }
}

// ---------------------------------------------------------------- CEL rules

function ruleError(rule: ValidationRule, path: string, schema: SchemaNode, value: unknown, evaluationError?: string): FieldError {
  const at = rule.fieldPath ? childPath(path, rule.fieldPath.replace(/^\./, "")) : path;
  const detail = evaluationError ? `rule evaluation failed: ${evaluationError}` : rule.message ?? `failed rule: ${rule.rule}`;
  // Like the API server, show the value only for scalars: "Invalid value: <message>" for objects and lists.
  const scalar = schema.type !== "object" && schema.type !== "array";
  switch (evaluationError ? "FieldValueInvalid" : rule.reason) {
    case "FieldValueRequired": return { path: at, message: `Required value: ${detail}` };
    case "FieldValueForbidden": return { path: at, message: `Forbidden: ${detail}` };
    case "FieldValueDuplicate": return { path: at, message: `Duplicate value: ${scalar ? show(value) : detail}` };
    default: return { path: at, message: scalar ? `Invalid value: ${show(value)}: ${detail}` : `Invalid value: ${detail}` };
  }
}

interface CelPass {
  kind: CompiledKind;
  root: Record<string, unknown>;
  converted: WeakMap<object, CelInput>;
  errors: FieldError[];
}

function celErrors(value: unknown, schema: SchemaNode, path: string, pass: CelPass): void {
  const { kind, root, errors } = pass;
  if (value === undefined || value === null || !kind.ruled.has(schema)) return;
  const rules = kind.rules.get(schema);
  if (rules) {
    const self = value === root ? rootToCel(root, schema) : toCel(value, schema, pass.converted);
    rules.forEach((compiledRule, i) => {
      if (compiledRule.transition) return; // needs the previous object: only the API server checks it on update
      const outcome = runRule(compiledRule, self);
      const rule = (schema["x-kubernetes-validations"] ?? [])[i];
      if (!outcome.passed && rule) errors.push(ruleError(rule, path, schema, value, outcome.evaluationError));
    });
  }
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item, i) => celErrors(item, schema.items as SchemaNode, indexPath(path, i), pass));
    return;
  }
  if (typeof value !== "object") return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const childSchema = schema.properties?.[key] ?? (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
    if (childSchema) celErrors(child, childSchema, childPath(path, key), pass);
  }
}

// ---------------------------------------------------------------- metadata (ObjectMeta's own validation)

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const SUBDOMAIN_MESSAGE = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART_MESSAGE = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MESSAGE = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const OBJECT_META_FIELDS = new Set([
  "name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
  "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields", "selfLink",
]);

function qualifiedNameProblems(key: string): string[] {
  const slash = key.lastIndexOf("/");
  const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : [undefined, key];
  const problems: string[] = [];
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) problems.push(`prefix part ${SUBDOMAIN_MESSAGE}`);
  if (name.length > 63) problems.push("name part must be no more than 63 characters");
  if (!LABEL_NAME.test(name)) problems.push(NAME_PART_MESSAGE);
  return problems;
}

function stringMapErrors(map: unknown, path: string, isLabels: boolean, errors: FieldError[]): void {
  if (map === undefined || map === null) return;
  if (typeof map !== "object" || Array.isArray(map)) {
    errors.push({ path, message: `Invalid value: "${jsonTypeName(map)}": ${path} must be a map of strings` });
    return;
  }
  for (const [key, value] of Object.entries(map)) {
    for (const problem of qualifiedNameProblems(key)) errors.push({ path, message: `Invalid value: ${show(key)}: ${problem}` });
    if (typeof value !== "string") errors.push({ path: childPath(path, key), message: `Invalid value: "${jsonTypeName(value)}": must be a string` });
    else if (isLabels && value.length > 63) errors.push({ path, message: `Invalid value: ${show(value)}: must be no more than 63 characters` });
    else if (isLabels && !LABEL_VALUE.test(value)) errors.push({ path, message: `Invalid value: ${show(value)}: ${LABEL_VALUE_MESSAGE}` });
  }
}

/** Checks metadata as the API server does for every object; defaults the namespace of namespaced kinds. */
function metadataErrors(object: Record<string, unknown>, namespaced: boolean, errors: FieldError[]): void {
  const metadata = object.metadata;
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    errors.push({ path: "metadata.name", message: "Required value: name or generateName is required" });
    return;
  }
  const meta = metadata as Record<string, unknown>;
  for (const key of Object.keys(meta)) {
    if (!OBJECT_META_FIELDS.has(key)) {
      errors.push({ path: childPath("metadata", key), message: UNKNOWN_FIELD });
      delete meta[key];
    }
  }
  const { name } = meta;
  if (typeof name !== "string" || name === "") errors.push({ path: "metadata.name", message: "Required value: name or generateName is required" });
  else if (name.length > 253) errors.push({ path: "metadata.name", message: `Invalid value: ${show(name)}: must be no more than 253 characters` });
  else if (!DNS1123_SUBDOMAIN.test(name)) errors.push({ path: "metadata.name", message: `Invalid value: ${show(name)}: ${SUBDOMAIN_MESSAGE}` });
  if (!namespaced) delete meta.namespace; // the API server ignores a namespace on cluster-scoped objects
  else if (meta.namespace === undefined || meta.namespace === "") meta.namespace = "default"; // as kubectl does
  else if (typeof meta.namespace !== "string" || meta.namespace.length > 63 || !DNS1123_LABEL.test(meta.namespace)) {
    errors.push({ path: "metadata.namespace", message: `Invalid value: ${show(meta.namespace)}: ${LABEL_MESSAGE}` });
  }
  stringMapErrors(meta.labels, "metadata.labels", true, errors);
  stringMapErrors(meta.annotations, "metadata.annotations", false, errors);
}

// ---------------------------------------------------------------- the whole check

function kindOf(doc: Record<string, unknown>, errors: FieldError[]): Kind | undefined {
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== "string" || apiVersion === "") errors.push({ path: "apiVersion", message: "Required value: apiVersion not set" });
  if (typeof kind !== "string" || kind === "") errors.push({ path: "kind", message: "Required value: kind not set" });
  if (errors.length > 0) return undefined;
  const known = kinds().find((k) => k === kind);
  const noMatch = `no matches for kind ${show(kind)} in version ${show(apiVersion)}`;
  if (!known) errors.push({ path: "kind", message: noMatch });
  else if (apiVersion !== API_VERSION) errors.push({ path: "apiVersion", message: noMatch });
  return errors.length > 0 ? undefined : known;
}

// The API server's blocking error types: TypeInvalid, NotSupported, Required, TooLong, TooMany.
const BLOCKING_KEYWORDS = new Set(["type", "enum", "required", "maxLength", "maxItems", "maxProperties", "additionalProperties"]);

// The API server checks a string's maxLength, minLength and pattern in turn and reports the first failure.
const STRING_CHECKS = ["maxLength", "minLength", "pattern"];

function firstStringErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const rank = (e: ErrorObject) => STRING_CHECKS.indexOf(e.keyword);
  return errors.filter((e) => rank(e) < 0 || !errors.some((o) => o.instancePath === e.instancePath && rank(o) >= 0 && rank(o) < rank(e)));
}

const RULES_NOT_CHECKED =
  "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/**
 * Validates one manifest as the kube-apiserver would on `kubectl apply`, and returns it defaulted.
 * The input is not modified. A `status` in the manifest is checked for unknown fields and then dropped:
 * with a status subresource the API server ignores it on create, and only Vireo writes status.
 */
export function validateManifest(doc: unknown): ValidationResult {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return { ok: false, errors: [{ path: "", message: `Invalid value: "${jsonTypeName(doc)}": a manifest must be an object` }] };
  }
  const errors: FieldError[] = [];
  const kind = kindOf(doc as Record<string, unknown>, errors);
  if (!kind) return { ok: false, errors };
  const compiledKind = compiledFor(kind);
  const object = cloneJson(doc as Record<string, unknown>);
  metadataErrors(object, isNamespaced(kind), errors);
  // Strict field validation covers status too; then status is dropped, as the API server drops it.
  pruneUnknownFields(object, compiledKind.schema, "", errors);
  delete object.status;
  applyDefaults(object, compiledKind.schema, compiledKind.defaulted);
  const schemaErrors = compiledKind.validate(object) ? [] : firstStringErrors(compiledKind.validate.errors ?? []);
  for (const error of schemaErrors) errors.push(ajvError(error, object));
  listTypeErrors(object, compiledKind.schema, "", errors, compiledKind.listTyped);
  // As on the API server, CEL rules are skipped (and that is said) after an error that could break
  // their typing or cost bounds; out-of-range values and pattern mismatches do not stop them.
  if (!schemaErrors.some((e) => BLOCKING_KEYWORDS.has(e.keyword))) celErrors(object, compiledKind.schema, "", { kind: compiledKind, root: object, converted: new WeakMap(), errors });
  else errors.push({ path: "", message: RULES_NOT_CHECKED });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, object: object as unknown as VireoObject };
}

/** One line per error, as `kubectl` prints them: `spec.memoryMiB: Invalid value: ...`. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.path === "" ? e.message : `${e.path}: ${e.message}`)).join("\n");
}
