// `vireo get` tables, laid out as `kubectl get` lays out custom resources: the CRD's
// additionalPrinterColumns after NAME (and NAMESPACE first with -A), upper-case headers, columns
// aligned as kubectl's tabwriter aligns them, AGE as kubectl words it, empty cells where a value is missing.
import type { Kind, VireoObject } from "../api/types.ts";
import { isNamespaced, printerColumns } from "../api/crds.ts";
import type { PrinterColumn } from "../api/crds.ts";

export interface TableOptions {
  /** `-o wide`: also the columns of priority above 0. */
  wide?: boolean;
  /** Milliseconds since the epoch that ages are measured against. */
  now: number;
  /** `-A`: a NAMESPACE column first. When absent, shown iff the objects span several namespaces. */
  allNamespaces?: boolean;
}

/** A JSONPath the table cannot evaluate (a defect in a CRD's printer columns). */
export class JsonPathError extends Error {
  constructor(path: string, reason: string) {
    super(`JSONPath ${JSON.stringify(path)}: ${reason}`);
    this.name = "JsonPathError";
  }
}

// kubectl's tabwriter: minimum cell width 6, padding 3, padded with spaces (printers.GetNewTabWriter).
const MIN_WIDTH = 6;
const PADDING = 3;
// A missing value prints as an empty cell: what kubectl shows for a custom resource's printer column
// (the API server's table has a nil cell there), checked against kube-apiserver v1.36.
const NONE = "";

// ---------------------------------------------------------------- JSONPath (the subset printer columns use)

type Step =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "all" }
  | { kind: "filter"; field: string[]; op: "==" | "!="; value: unknown };

const STEP = /^(?:\.((?:\\.|[^.[\\])+)|\[(\d+|\*)\]|\[\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*("[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false)\)\])/;

const compiledPaths = new Map<string, Step[]>();

/** Parses `.a.b`, `.a[0]`, `.a[*]`, `.a[?(@.type=="Ready")].status`, keys with escaped dots (`.a\.b`). */
export function parseJsonPath(path: string): Step[] {
  const cached = compiledPaths.get(path);
  if (cached) return cached;
  const steps: Step[] = [];
  let rest = path.replace(/^\{(.*)\}$/, "$1");
  while (rest.length > 0) {
    const m = STEP.exec(rest);
    if (!m) throw new JsonPathError(path, `unsupported syntax at ${JSON.stringify(rest)}`);
    if (m[1] !== undefined) steps.push({ kind: "field", name: m[1].replace(/\\(.)/g, "$1") });
    else if (m[2] === "*") steps.push({ kind: "all" });
    else if (m[2] !== undefined) steps.push({ kind: "index", index: Number(m[2]) });
    else {
      const literal = m[5] as string;
      const value = /^["']/.test(literal) ? literal.slice(1, -1) : JSON.parse(literal);
      steps.push({ kind: "filter", field: (m[3] as string).slice(1).split("."), op: m[4] as "==" | "!=", value });
    }
    rest = rest.slice(m[0].length);
  }
  compiledPaths.set(path, steps);
  return steps;
}

function at(value: unknown, field: string): unknown {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[field] : undefined;
}

/** Every value the path selects, in document order. */
export function evaluateJsonPath(path: string, root: unknown): unknown[] {
  let current: unknown[] = [root];
  for (const step of parseJsonPath(path)) {
    const next: unknown[] = [];
    for (const value of current) {
      if (step.kind === "field") next.push(at(value, step.name));
      else if (!Array.isArray(value)) continue;
      else if (step.kind === "index") next.push(value[step.index]);
      else if (step.kind === "all") next.push(...value);
      else {
        for (const item of value) {
          const actual = step.field.reduce<unknown>(at, item);
          if ((actual === step.value) === (step.op === "==")) next.push(item);
        }
      }
    }
    current = next.filter((v) => v !== undefined);
  }
  return current;
}

// ---------------------------------------------------------------- cells

/** An age as kubectl prints it (k8s.io/apimachinery duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** A cell as the API server's table conversion types it and kubectl prints it. */
export function formatCell(column: Pick<PrinterColumn, "type">, value: unknown, now: number): string {
  if (value === undefined || value === null) return NONE;
  switch (column.type) {
    case "integer":
      return typeof value === "number" ? String(Math.trunc(value)) : NONE;
    case "number":
      return typeof value === "number" ? String(value) : NONE;
    case "boolean":
      return typeof value === "boolean" ? String(value) : NONE;
    case "date": {
      if (typeof value !== "string") return NONE;
      const time = Date.parse(value);
      return Number.isNaN(time) ? "<invalid>" : humanDuration(now - time);
    }
    default:
      return typeof value === "string" ? value : JSON.stringify(value);
  }
}

function cellOf(column: PrinterColumn, object: VireoObject, now: number): string {
  const [first] = evaluateJsonPath(column.jsonPath, object);
  return formatCell(column, first, now);
}

// ---------------------------------------------------------------- the table

function width(text: string): number {
  return [...text].length;
}

/** Aligns rows as Go's tabwriter does for kubectl: every column but the last padded to a common width. */
export function alignColumns(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) =>
    Math.max(MIN_WIDTH, ...rows.map((r) => width(r[c] ?? "") + PADDING)));
  return rows
    .map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell + " ".repeat((widths[c] ?? 0) - width(cell)))).join(""))
    .map((line) => `${line}\n`)
    .join("");
}

/** The `kubectl get` table of some objects of one kind; "" when there are none. */
export function formatTable(kind: Kind, objects: readonly VireoObject[], options: TableOptions): string {
  if (objects.length === 0) return "";
  const columns = printerColumns(kind).filter((c) => options.wide || (c.priority ?? 0) === 0);
  const namespaces = new Set(objects.map((o) => o.metadata.namespace ?? ""));
  const withNamespace = isNamespaced(kind) && (options.allNamespaces ?? namespaces.size > 1);
  const header = [...(withNamespace ? ["NAMESPACE"] : []), "NAME", ...columns.map((c) => c.name.toUpperCase())];
  const rows = objects.map((object) => [
    ...(withNamespace ? [object.metadata.namespace ?? "default"] : []),
    object.metadata.name,
    ...columns.map((column) => cellOf(column, object, options.now)),
  ]);
  return alignColumns([header, ...rows]);
}
