// Reading one manifest file: multi-document YAML, each document validated against the CRDs exactly as
// the API server would (same defaults, same field paths). A file is taken whole or not at all.

import { YAML11_SCHEMA, loadAll } from "js-yaml";
import type { VireoObject } from "../../api/types.ts";
import { validateManifest } from "../../api/schema.ts";
import type { ManifestError } from "../../state/state-dir.ts";

export interface ParsedDocument {
  document: number;
  object: VireoObject;
}

export type ParsedFile = { ok: true; documents: ParsedDocument[] } | { ok: false; errors: ManifestError[] };

export function isManifestFile(path: string): boolean {
  return path.endsWith(".yaml") || path.endsWith(".yml");
}

export function parseManifestFile(file: string, text: string): ParsedFile {
  let raw: unknown[];
  try {
    // YAML 1.1, as kubectl reads manifests: an unquoted `Off` is a boolean there too, so a file the
    // API server would refuse is refused here the same way.
    raw = loadAll(text, { schema: YAML11_SCHEMA });
  } catch (error) {
    return { ok: false, errors: [{ file, message: `YAML syntax error: ${(error as Error).message.split("\n")[0]}` }] };
  }
  const documents: ParsedDocument[] = [];
  const errors: ManifestError[] = [];
  raw.forEach((doc, index) => {
    if (doc === null || doc === undefined) return; // an empty document, e.g. after a trailing ---
    if (isForeign(doc)) return; // a Namespace or another group's object: the same checkout may feed kubectl
    const result = validateManifest(doc);
    if (result.ok) documents.push({ document: index, object: result.object });
    else for (const e of result.errors) errors.push({ file, document: index, path: e.path, message: e.message });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, documents };
}

/** Objects of other API groups (a Namespace, say) are not Vireo's to validate or to act on. */
function isForeign(doc: unknown): boolean {
  const apiVersion = (doc as { apiVersion?: unknown }).apiVersion;
  return typeof doc === "object" && typeof apiVersion === "string" && apiVersion !== "" && !apiVersion.startsWith("vireo.dev/");
}

export function formatManifestError(e: ManifestError): string {
  const where = e.document !== undefined ? `${e.file} (document ${e.document})` : e.file;
  return e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`;
}
