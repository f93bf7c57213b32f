// CEL rules of the CRDs (`x-kubernetes-validations`), compiled and evaluated with @bufbuild/cel the way
// the kube-apiserver evaluates them: `self` bound to the value at the rule's schema location, integers as
// CEL ints, objects and maps as CEL maps.
import { celEnv, celList, celMap, CelScalar, isCelError, parse, plan } from "@bufbuild/cel";
import type { CelInput, CelResult } from "@bufbuild/cel";
import type { SchemaNode } from "./defaults.ts";

/** A rule that does not parse, or uses something the Kubernetes CEL environment does not offer. */
export class CelRuleError extends Error {
  readonly rule: string;
  constructor(rule: string, message: string, options?: ErrorOptions) {
    super(`CEL rule ${JSON.stringify(rule)}: ${message}`, options);
    this.name = "CelRuleError";
    this.rule = rule;
  }
}

export interface CompiledRule {
  readonly rule: string;
  /** Transition rules compare with the previous version of the object (`oldSelf`). */
  readonly transition: boolean;
  readonly evaluate: (self: CelInput) => CelResult;
}

// Functions of the CEL standard library that both the kube-apiserver and @bufbuild/cel provide. The
// Kubernetes extension libraries (lists, strings, regex, quantity, ip, url) are not offered by the
// evaluator, so a rule using them is refused rather than silently passing in the file mode.
const SHARED_FUNCTIONS = new Set([
  "_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_+_", "_-_", "_*_", "_/_", "_%_", "-_", "!_",
  "_&&_", "_||_", "_?_:_", "_[_]", "@in", "@not_strictly_false",
  "size", "matches", "contains", "startsWith", "endsWith",
  "int", "uint", "double", "string", "bool", "bytes", "duration", "timestamp", "dyn", "type",
]);

// Operators the planner handles itself rather than through the function resolver.
const PLANNER_BUILTINS = new Set(["_&&_", "_||_", "_?_:_", "_[_]", "@not_strictly_false"]);

const ROOT_VARIABLES = new Set(["self", "oldSelf"]);

// `matches` compiles its pattern on every call by default; compiled patterns are kept instead. The CRD
// rules use only the part of RE2 syntax that JavaScript regular expressions read the same way, plus
// RE2's leading flag group (`(?i)`, `(?s)`, `(?m)`), turned into flags. A pattern JavaScript cannot
// read fails the rule with an evaluation error; it never passes silently.
const patterns = new Map<string, RegExp>();
const re2 = {
  compile(pattern: string): { test(text: string): boolean } {
    let compiled = patterns.get(pattern);
    if (!compiled) {
      const flags = /^\(\?([ims]+)\)/.exec(pattern);
      compiled = new RegExp(flags ? pattern.slice(flags[0].length) : pattern, `u${flags?.[1] ?? ""}`);
      patterns.set(pattern, compiled);
    }
    return compiled;
  },
};

const env = celEnv({ variables: { self: CelScalar.DYN, oldSelf: CelScalar.DYN }, re2 });

interface ExprNode {
  exprKind: { case: string | undefined; value?: unknown };
}

interface ReferenceCheck {
  functions: Set<string>;
  identifiers: Set<string>;
}

/** Collects the functions called and the free identifiers of a parsed expression. */
function collectReferences(expr: ExprNode, bound: ReadonlySet<string>, out: ReferenceCheck): void {
  const kind = expr.exprKind;
  switch (kind.case) {
    case "identExpr": {
      const name = (kind.value as { name: string }).name;
      if (!bound.has(name)) out.identifiers.add(name);
      return;
    }
    case "selectExpr":
      collectReferences((kind.value as { operand: ExprNode }).operand, bound, out);
      return;
    case "callExpr": {
      const call = kind.value as { function: string; target?: ExprNode; args: ExprNode[] };
      out.functions.add(call.function);
      if (call.target) collectReferences(call.target, bound, out);
      for (const arg of call.args) collectReferences(arg, bound, out);
      return;
    }
    case "listExpr":
      for (const element of (kind.value as { elements: ExprNode[] }).elements) collectReferences(element, bound, out);
      return;
    case "structExpr":
      for (const entry of (kind.value as { entries: { mapKey?: ExprNode; value: ExprNode }[] }).entries) {
        if (entry.mapKey) collectReferences(entry.mapKey, bound, out);
        collectReferences(entry.value, bound, out);
      }
      return;
    case "comprehensionExpr": {
      const c = kind.value as {
        iterVar: string; iterVar2: string; accuVar: string;
        iterRange: ExprNode; accuInit: ExprNode; loopCondition: ExprNode; loopStep: ExprNode; result: ExprNode;
      };
      collectReferences(c.iterRange, bound, out);
      collectReferences(c.accuInit, bound, out);
      const inner = new Set([...bound, c.iterVar, c.accuVar, ...(c.iterVar2 ? [c.iterVar2] : [])]);
      for (const e of [c.loopCondition, c.loopStep, c.result]) collectReferences(e, inner, out);
      return;
    }
    default:
      return; // constants
  }
}

/** Parses and plans a rule; throws CelRuleError if it would not compile on the kube-apiserver too. */
export function compileRule(rule: string): CompiledRule {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rule);
  } catch (err) {
    throw new CelRuleError(rule, `does not parse: ${(err as Error).message}`, { cause: err });
  }
  const refs: ReferenceCheck = { functions: new Set(), identifiers: new Set() };
  collectReferences(parsed.expr as ExprNode, ROOT_VARIABLES, refs);
  const [undeclared] = refs.identifiers;
  if (undeclared !== undefined) throw new CelRuleError(rule, `undeclared reference to '${undeclared}'`);
  for (const fn of refs.functions) {
    if (!SHARED_FUNCTIONS.has(fn)) throw new CelRuleError(rule, `function '${fn}' is not available in both the Kubernetes CEL environment and the file mode`);
    if (!PLANNER_BUILTINS.has(fn) && !env.funcs.find(fn)) throw new CelRuleError(rule, `function '${fn}' is not provided by the evaluator`);
  }
  const program = plan(env, parsed);
  return { rule, transition: mentionsOldSelf(parsed.expr as ExprNode), evaluate: (self) => program({ self, oldSelf: null }) };
}

function mentionsOldSelf(expr: ExprNode): boolean {
  const refs: ReferenceCheck = { functions: new Set(), identifiers: new Set() };
  collectReferences(expr, new Set(["self"]), refs);
  return refs.identifiers.has("oldSelf");
}

/**
 * Converts a JSON value to the CEL value the kube-apiserver would bind: `type: integer` becomes a CEL
 * int (bigint), `type: number` a double; objects become maps. `converted` lets nested rule locations
 * reuse the conversion of an enclosing one.
 */
export function toCel(value: unknown, schema: SchemaNode | undefined, converted?: WeakMap<object, CelInput>): CelInput {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return schema?.type === "integer" && Number.isInteger(value) ? BigInt(value) : value;
  if (typeof value === "string" || typeof value === "boolean") return value;
  const known = converted?.get(value as object);
  if (known !== undefined) return known;
  let out: CelInput;
  // Built as the evaluator's own list and map values, so it does not convert them again on every access.
  if (Array.isArray(value)) {
    out = celList(value.map((item) => toCel(item, schema?.items, converted)));
  } else {
    const map = new Map<string, CelInput>();
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) map.set(key, toCel(child, propertySchema(schema, key), converted));
    out = celMap(map);
  }
  converted?.set(value as object, out);
  return out;
}

function propertySchema(schema: SchemaNode | undefined, key: string): SchemaNode | undefined {
  if (!schema) return undefined;
  const declared = schema.properties?.[key];
  if (declared) return declared;
  return typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
}

/** The root object as CEL sees it: metadata reduced to name and generateName, as on the API server. */
export function rootToCel(object: Record<string, unknown>, schema: SchemaNode): CelInput {
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  const visibleMetadata: Record<string, unknown> = {};
  for (const key of ["name", "generateName"]) if (typeof metadata[key] === "string") visibleMetadata[key] = metadata[key];
  return toCel({ ...object, metadata: visibleMetadata }, schema);
}

export type RuleOutcome = { passed: true } | { passed: false; evaluationError?: string };

export function runRule(compiled: CompiledRule, self: CelInput): RuleOutcome {
  const result = compiled.evaluate(self);
  if (isCelError(result)) return { passed: false, evaluationError: result.message };
  if (typeof result !== "boolean") return { passed: false, evaluationError: `rule returned ${typeof result}, not bool` };
  return result ? { passed: true } : { passed: false };
}
