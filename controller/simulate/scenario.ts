// Reading a scenario file: its structure (scenario-schema.ts), its fleet (manifests.ts) and its timeline
// (timeline.ts), every problem reported at its file, line and field. A scenario with any problem is refused
// whole: a what-if run on half a scenario answers the wrong question.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, isAbsolute, normalize } from "node:path";
import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { ScenarioDocument } from "./scenario-schema.ts";
import { schemaProblems } from "./scenario-schema.ts";
import { ScenarioError, report } from "./problems.ts";
import type { ProblemSink } from "./problems.ts";
import { loadManifests } from "./manifests.ts";
import { FleetIndex, resolveTimeline } from "./timeline.ts";
import type { ScenarioStep } from "./timeline.ts";
import { durationOf } from "./durations.ts";
import { YamlSyntaxError, parseLinedYaml } from "./yaml-lines.ts";

/** The virtual clock's start when a scenario names none (VirtualClock's own default). */
export const DEFAULT_START = "2026-01-01T00:00:00.000Z";
export const DEFAULT_SAMPLE_INTERVAL_MS = 30_000;
/** Samples kept per run at most: the interval grows for long runs so a report stays small. */
const MAX_SAMPLES = 2_000;

export interface Scenario {
  name: string;
  description?: string;
  /** The file as it was named. */
  file: string;
  seed: number;
  startMs: number;
  durationMs: number;
  sampleIntervalMs: number;
  fleet: VireoObject[];
  steps: ScenarioStep[];
}

/** Reads and checks a scenario; throws ScenarioError listing every problem. */
export function loadScenario(file: string): Scenario {
  if (!existsSync(file)) throw new ScenarioError([{ file, message: "no such file" }]);
  return parseScenario(file, readFileSync(file, "utf8"));
}

export function parseScenario(file: string, text: string): Scenario {
  let documents;
  try {
    documents = parseLinedYaml(text, file);
  } catch (error) {
    if (!(error instanceof YamlSyntaxError)) throw error;
    throw new ScenarioError([{ file, line: error.line, message: error.message }]);
  }
  if (documents.length !== 1) throw new ScenarioError([{ file, message: `a scenario is one YAML document, found ${documents.length}` }]);
  const parsed = documents[0]!;
  const sink: ProblemSink = { file, lineOf: (path) => parsed.lineOf(path), problems: [] };
  const document = normalizeTimes(parsed.value);
  for (const p of schemaProblems(document)) report(sink, p.path, p.message);
  if (sink.problems.length > 0) throw new ScenarioError(sink.problems);
  const scenario = resolve(document as ScenarioDocument, file, sink);
  if (sink.problems.length > 0 || !scenario) throw new ScenarioError(sink.problems);
  return scenario;
}

interface RunTimes {
  startMs: number;
  durationMs: number;
  sampleIntervalMs: number;
}

/** When the run starts, how long it lasts and how often it is sampled; undefined (reported) when unusable. */
function runTimes(doc: ScenarioDocument, sink: ProblemSink): RunTimes | undefined {
  const durationMs = durationOf(doc.duration);
  const durationOk = durationMs !== undefined && durationMs > 0;
  if (!durationOk) report(sink, "duration", `must be a positive duration such as 30m or 2h, got ${JSON.stringify(doc.duration)}`);
  const sampleMs = doc.sampleInterval === undefined ? DEFAULT_SAMPLE_INTERVAL_MS : durationOf(doc.sampleInterval);
  if (sampleMs === undefined || sampleMs < 1000) report(sink, "sampleInterval", "must be a duration of at least 1s");
  const startMs = Date.parse(doc.start ?? DEFAULT_START);
  const startOk = !Number.isNaN(startMs) && (doc.start === undefined || UTC_TIME.test(doc.start));
  if (!startOk) report(sink, "start", `must be a UTC time such as 2026-03-02T13:00:00Z, got ${JSON.stringify(doc.start)}`);
  if (!durationOk || !startOk || sampleMs === undefined) return undefined;
  return { startMs, durationMs, sampleIntervalMs: Math.max(sampleMs, Math.ceil(durationMs / MAX_SAMPLES / 1000) * 1000) };
}

const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function resolve(doc: ScenarioDocument, file: string, sink: ProblemSink): Scenario | undefined {
  const times = runTimes(doc, sink);
  const base = dirname(file);
  const resolvePath = (relative: string): string => normalize(isAbsolute(relative) ? relative : join(base, relative));
  const fleet = loadManifests(doc.fleet, "fleet", sink, resolvePath);
  duplicates(fleet, sink);
  const index = new FleetIndex();
  index.add(fleet);
  if (index.hosts.size === 0 && sink.problems.length === 0) report(sink, "fleet", "the fleet has no Host");
  const steps = resolveTimeline(doc.timeline ?? [], { sink, resolve: resolvePath, durationMs: times?.durationMs ?? Number.POSITIVE_INFINITY, fleet: index });
  if (!times) return undefined;
  return { name: doc.name, ...(doc.description !== undefined ? { description: doc.description } : {}), file, seed: doc.seed ?? 1, ...times, fleet, steps };
}

/** An object declared twice is refused: which one a run would take is a guess. */
function duplicates(objects: readonly VireoObject[], sink: ProblemSink): void {
  const seen = new Set<string>();
  for (const object of objects) {
    const key = keyOf(object);
    if (seen.has(key)) report(sink, "fleet", `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name} is declared twice`);
    seen.add(key);
  }
}

/** YAML 1.1 reads an unquoted timestamp as a date; the scenario's `start` is kept as the text it was. */
function normalizeTimes(value: unknown): unknown {
  if (typeof value !== "object" || value === null || !((value as { start?: unknown }).start instanceof Date)) return value;
  const start = (value as { start: Date }).start;
  return { ...value, start: Number.isNaN(start.getTime()) ? String(start) : start.toISOString() };
}
