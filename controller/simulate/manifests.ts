// The manifests a scenario brings: files and directories it names (relative to the scenario file, read as
// `vireo run --manifests` reads them) and objects written inline. Each is validated by its CRD, and a bad
// one is reported at its own file and line.

import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { VireoObject } from "../api/types.ts";
import { validateManifest } from "../api/schema.ts";
import { isManifestFile, parseManifestFile } from "../sources/files/manifests.ts";
import type { ManifestSource } from "./scenario-schema.ts";
import type { ProblemSink } from "./problems.ts";
import { report } from "./problems.ts";
import { childPath, parseLinedYaml, YamlSyntaxError } from "./yaml-lines.ts";

/** Resolves a path the scenario names, relative to the scenario file's directory. */
export type PathResolver = (relative: string) => string;

/** The objects of `source` (at field `path` of the scenario), or none with the problems reported. */
export function loadManifests(source: Readonly<ManifestSource>, path: string, sink: ProblemSink, resolve: PathResolver): VireoObject[] {
  const objects: VireoObject[] = [];
  const named = source.manifests === undefined ? [] : Array.isArray(source.manifests) ? source.manifests : [source.manifests];
  named.forEach((relative, i) => {
    const field = Array.isArray(source.manifests) ? childPath(childPath(path, "manifests"), i) : childPath(path, "manifests");
    const target = resolve(relative);
    if (!existsSync(target)) return report(sink, field, `${target}: no such file or directory`);
    const files = statSync(target).isDirectory() ? manifestFiles(target) : [target];
    if (files.length === 0) return report(sink, field, `${target}: no .yaml or .yml files`);
    for (const file of files) objects.push(...readManifestFile(file, sink));
  });
  (source.objects ?? []).forEach((raw, i) => {
    const object = admit(raw, childPath(childPath(path, "objects"), i), sink);
    if (object) objects.push(object);
  });
  (source.generate ?? []).forEach(({ count, object }, i) => {
    const field = `${childPath(childPath(path, "generate"), i)}.object`;
    const width = String(count).length;
    for (let n = 1; n <= count; n++) {
      const made = admit(withIndex(object, String(n).padStart(width, "0")), field, sink);
      // One copy's problems are every copy's: say them once.
      if (!made) break;
      objects.push(made);
    }
  });
  return objects;
}

/** An inline manifest validated by its CRD; undefined when it is another group's or is refused. */
function admit(raw: unknown, field: string, sink: ProblemSink): VireoObject | undefined {
  if (isForeign(raw)) return undefined;
  const result = validateManifest(raw);
  if (result.ok) return result.object;
  for (const e of result.errors) report(sink, e.path ? `${field}.${e.path}` : field, e.message);
  return undefined;
}

/** A copy of `value` with `{index}` in every string replaced by `index`. */
function withIndex(value: unknown, index: string): unknown {
  if (typeof value === "string") return value.replaceAll("{index}", index);
  if (Array.isArray(value)) return value.map((v) => withIndex(v, index));
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withIndex(v, index)]));
  return value;
}

/** A manifest file's objects, its errors reported at their lines in that file. */
function readManifestFile(file: string, sink: ProblemSink): VireoObject[] {
  const text = readFileSync(file, "utf8");
  const parsed = parseManifestFile(file, text);
  if (parsed.ok) return parsed.documents.map((d) => d.object);
  let documents: ReturnType<typeof parseLinedYaml> = [];
  try {
    documents = parseLinedYaml(text, file);
  } catch (error) {
    if (!(error instanceof YamlSyntaxError)) throw error;
    sink.problems.push({ file, line: error.line, message: error.message });
    return [];
  }
  for (const e of parsed.errors) {
    const line = e.document === undefined ? undefined : documents[e.document]?.lineOf(e.path ?? "");
    sink.problems.push({ file, ...(line !== undefined ? { line } : {}), ...(e.path ? { path: e.path } : {}), message: e.message });
  }
  return [];
}

/** The manifest files under `dir`, recursively, in name order, as `vireo run --manifests` reads them. */
function manifestFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && isManifestFile(entry.name) && !entry.name.startsWith(".")) files.push(join(entry.parentPath, entry.name));
  }
  return files.sort();
}

/** Objects of other API groups (a Namespace) are skipped, as the file mode skips them. */
function isForeign(doc: unknown): boolean {
  const apiVersion = (doc as { apiVersion?: unknown } | null)?.apiVersion;
  return typeof apiVersion === "string" && apiVersion !== "" && !apiVersion.startsWith("vireo.dev/");
}
