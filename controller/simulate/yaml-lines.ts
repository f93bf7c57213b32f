// YAML read with the line of every field, so a scenario's errors can say `scenario.yaml:14: timeline[2].fault.host`.
// js-yaml's event stream carries source offsets; walking it once gives each field path the line it starts on.

import { EVENT_ID, YAML11_SCHEMA, constructFromEvents, getScalarValue, parseEvents } from "js-yaml";
import type { Event } from "js-yaml";

/** One YAML document with the line (1-based) of each field path in it. */
export interface LinedDocument {
  value: unknown;
  /** The line of `path` (`timeline[2].fault.host`), or of its nearest ancestor present in the file. */
  lineOf(path: string): number;
}

export class YamlSyntaxError extends Error {
  readonly line: number;
  constructor(message: string, line: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "YamlSyntaxError";
    this.line = line;
  }
}

interface Frame {
  kind: "document" | "mapping" | "sequence";
  path: string;
  index: number;
  key: string | undefined;
  expectKey: boolean;
}

/** Field paths are written as the API server writes them: `spec.target.host`, `timeline[2]`. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** The parent of a field path (`a.b[2].c` → `a.b[2]` → `a.b` → `a` → ``). */
export function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut < 0 ? "" : path.slice(0, cut);
}

/**
 * Every document of `text` (YAML 1.1, as kubectl reads manifests), each with its field lines. A syntax error
 * is thrown as a YamlSyntaxError carrying its line.
 */
export function parseLinedYaml(text: string, filename: string): LinedDocument[] {
  let events: Event[];
  let values: unknown[];
  try {
    events = parseEvents(text, { filename });
    values = constructFromEvents(events, { source: text, filename, schema: YAML11_SCHEMA });
  } catch (error) {
    const mark = (error as { mark?: { line?: number } }).mark;
    throw new YamlSyntaxError(`YAML syntax error: ${(error as Error).message.split("\n")[0]}`, (mark?.line ?? 0) + 1, { cause: error });
  }
  const lineStarts = lineStartsOf(text);
  const lines = fieldLines(events, text, (offset) => lineAt(lineStarts, offset));
  return values.map((value, i) => {
    const own = lines[i] ?? new Map<string, number>();
    return { value, lineOf: (path: string) => nearestLine(own, path) };
  });
}

function nearestLine(lines: ReadonlyMap<string, number>, path: string): number {
  for (let p = path; ; p = parentPath(p)) {
    const line = lines.get(p);
    if (line !== undefined) return line;
    if (p === "") return 1;
  }
}

/** Per document, the line each field path starts on: a mapping's field at its key, an item at its first token. */
function fieldLines(events: readonly Event[], text: string, lineOf: (offset: number) => number): Map<string, number>[] {
  const documents: Map<string, number>[] = [];
  const stack: Frame[] = [];
  let lines = new Map<string, number>();
  const note = (path: string, offset: number): void => {
    if (offset >= 0 && !lines.has(path)) lines.set(path, lineOf(offset));
  };
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) {
      lines = new Map();
      documents.push(lines);
      stack.push({ kind: "document", path: "", index: 0, key: undefined, expectKey: false });
      continue;
    }
    if (event.type === EVENT_ID.POP) {
      stack.pop();
      continue;
    }
    const top = stack.at(-1);
    const offset = event.type === EVENT_ID.SCALAR ? event.valueStart : event.type === EVENT_ID.ALIAS ? event.anchorStart : event.start;
    let path = "";
    if (top?.kind === "sequence") path = childPath(top.path, top.index++);
    else if (top?.kind === "mapping" && top.expectKey) {
      // A key: its line is the field's line. A complex (non-scalar) key gets no path of its own.
      top.key = event.type === EVENT_ID.SCALAR ? getScalarValue(text, event) : undefined;
      top.expectKey = false;
      if (top.key !== undefined) note(childPath(top.path, top.key), offset);
      if (event.type === EVENT_ID.MAPPING) stack.push({ kind: "mapping", path: "\u0000", index: 0, key: undefined, expectKey: true });
      else if (event.type === EVENT_ID.SEQUENCE) stack.push({ kind: "sequence", path: "\u0000", index: 0, key: undefined, expectKey: false });
      continue;
    } else if (top?.kind === "mapping") {
      path = top.key === undefined ? "\u0000" : childPath(top.path, top.key);
      top.expectKey = true;
    } else if (top) path = top.path;
    note(path, offset);
    if (event.type === EVENT_ID.MAPPING) stack.push({ kind: "mapping", path, index: 0, key: undefined, expectKey: true });
    else if (event.type === EVENT_ID.SEQUENCE) stack.push({ kind: "sequence", path, index: 0, key: undefined, expectKey: false });
  }
  return documents;
}

function lineStartsOf(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function lineAt(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
