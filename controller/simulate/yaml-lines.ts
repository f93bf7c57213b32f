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
      stack.push(frame("document", ""));
    } else if (event.type === EVENT_ID.POP) stack.pop();
    else visitNode(event, stack, text, note);
  }
  return documents;
}

type NodeEvent = Exclude<Event, { type: typeof EVENT_ID.DOCUMENT | typeof EVENT_ID.POP }>;

/** A scalar, alias, mapping or sequence: noted at its path, and entered when it is a collection. */
function visitNode(event: NodeEvent, stack: Frame[], text: string, note: (path: string, offset: number) => void): void {
  const top = stack.at(-1);
  const offset = event.type === EVENT_ID.SCALAR ? event.valueStart : event.type === EVENT_ID.ALIAS ? event.anchorStart : event.start;
  if (top?.kind === "mapping" && top.expectKey) {
    // A key: its line is the field's line. A complex (non-scalar) key gets no path of its own.
    top.key = event.type === EVENT_ID.SCALAR ? getScalarValue(text, event) : undefined;
    top.expectKey = false;
    if (top.key !== undefined) note(childPath(top.path, top.key), offset);
    enter(event, stack, "\u0000");
    return;
  }
  const path = pathOfValue(top);
  note(path, offset);
  enter(event, stack, path);
}

/** The path of the value that comes next in `top`: a sequence's next item, a mapping's value of the key just read. */
function pathOfValue(top: Frame | undefined): string {
  if (top?.kind === "sequence") return childPath(top.path, top.index++);
  if (top?.kind !== "mapping") return top?.path ?? "";
  top.expectKey = true;
  return top.key === undefined ? "\u0000" : childPath(top.path, top.key);
}

function enter(event: NodeEvent, stack: Frame[], path: string): void {
  if (event.type === EVENT_ID.MAPPING) stack.push(frame("mapping", path));
  else if (event.type === EVENT_ID.SEQUENCE) stack.push(frame("sequence", path));
}

function frame(kind: Frame["kind"], path: string): Frame {
  return { kind, path, index: 0, key: undefined, expectKey: kind === "mapping" };
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
