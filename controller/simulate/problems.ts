// What is wrong with a scenario, said where it is: `file:line: field: message`, as a compiler says it.

export interface ScenarioProblem {
  file: string;
  line?: number;
  /** The field path (`timeline[2].fault.host`), when the problem is one field's. */
  path?: string;
  message: string;
}

/** A scenario `vireo simulate` refuses to run, with every problem found. */
export class ScenarioError extends Error {
  readonly problems: readonly ScenarioProblem[];
  constructor(problems: readonly ScenarioProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ScenarioError";
    this.problems = problems;
  }
}

export function formatProblem(p: Readonly<ScenarioProblem>): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** Where problems of one YAML document go: each field path is given its line. */
export interface ProblemSink {
  file: string;
  lineOf(path: string): number;
  problems: ScenarioProblem[];
}

/** Records a problem at `path`; returns undefined, so a resolver can `return report(…)` for "nothing". */
export function report(sink: ProblemSink, path: string, message: string): undefined {
  sink.problems.push({ file: sink.file, line: sink.lineOf(path), ...(path ? { path } : {}), message });
  return undefined;
}
