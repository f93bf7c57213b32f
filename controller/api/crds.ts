// The CRDs under crds/ as a catalogue: which kinds exist, their names, scope, schemas and printer columns.
// Kept apart from validation (schema.ts, with ajv and the CEL evaluator), so what only needs names — the
// API mode's client, `vireo get` — does not load the validators.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { API_VERSION, KINDS } from "./types.ts";
import type { Kind } from "./types.ts";
import type { SchemaNode } from "./defaults.ts";

export interface PrinterColumn {
  name: string;
  type: "integer" | "number" | "string" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    scope: "Cluster" | "Namespaced";
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: Record<string, never> };
      additionalPrinterColumns?: PrinterColumn[];
      schema: { openAPIV3Schema: SchemaNode };
    }[];
  };
}

/** The CRD files are missing, unreadable or malformed: a defect of the installation, not of a manifest. */
export class CrdLoadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CrdLoadError";
  }
}

export const CRD_DIR = join(import.meta.dirname, "..", "..", "crds");

function loadCrds(dir: string): Map<string, CustomResourceDefinition> {
  const byKind = new Map<string, CustomResourceDefinition>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  } catch (err) {
    throw new CrdLoadError(`cannot list CRDs in ${dir}`, { cause: err });
  }
  for (const file of files) {
    for (const doc of loadAll(readFileSync(join(dir, file), "utf8"))) {
      const crd = doc as CustomResourceDefinition | null;
      if (crd?.kind !== "CustomResourceDefinition") continue;
      if (crd.spec?.group !== "vireo.dev") throw new CrdLoadError(`${file}: CRD ${crd.metadata?.name} is not in group vireo.dev`);
      byKind.set(crd.spec.names.kind, crd);
    }
  }
  return byKind;
}

const crds = loadCrds(CRD_DIR);

/** The kinds that have a CRD, in the order of types.ts. */
export function kinds(): Kind[] {
  return KINDS.filter((kind) => crds.has(kind));
}

export function crdFor(kind: Kind): CustomResourceDefinition {
  const crd = crds.get(kind);
  if (!crd) throw new CrdLoadError(`no CRD for kind ${kind} in ${CRD_DIR}`);
  return crd;
}

function servedVersion(kind: Kind): CustomResourceDefinition["spec"]["versions"][number] {
  const crd = crdFor(kind);
  const version = crd.spec.versions.find((v) => `${crd.spec.group}/${v.name}` === API_VERSION && v.served);
  if (!version) throw new CrdLoadError(`CRD ${crd.metadata.name} does not serve ${API_VERSION}`);
  return version;
}

export function openAPISchema(kind: Kind): SchemaNode {
  return servedVersion(kind).schema.openAPIV3Schema;
}

export function printerColumns(kind: Kind): PrinterColumn[] {
  return servedVersion(kind).additionalPrinterColumns ?? [];
}

export function isNamespaced(kind: Kind): boolean {
  return crdFor(kind).spec.scope === "Namespaced";
}

/** Resolves what a user types after `get` — kind, plural, singular, short name or `plural.group` — to a kind. */
export function kindForResource(resource: string): Kind | undefined {
  const wanted = resource.toLowerCase().replace(/\.vireo\.dev$/, "");
  return kinds().find((kind) => {
    const names = crdFor(kind).spec.names;
    return [names.kind.toLowerCase(), names.plural, names.singular, ...(names.shortNames ?? [])].includes(wanted);
  });
}

/** Kinds in a category, as `kubectl get vireo` lists them. */
export function kindsInCategory(category: string): Kind[] {
  return kinds().filter((kind) => (crdFor(kind).spec.names.categories ?? []).includes(category));
}
