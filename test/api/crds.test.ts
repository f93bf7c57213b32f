import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { CRD_DIR, crdFor, kindForResource, kinds, kindsInCategory, openAPISchema, printerColumns } from "../../controller/api/schema.ts";
import type { CustomResourceDefinition, SchemaNode } from "../../controller/api/schema.ts";
import { CelRuleError, compileRule, runRule, toCel } from "../../controller/api/cel.ts";
import { parseJsonPath } from "../../controller/cli/table.ts";
import { KINDS } from "../../controller/api/types.ts";

const ALLOWED_KEYWORDS = new Set([
  "description", "type", "properties", "items", "additionalProperties", "required", "default", "nullable", "enum",
  "format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
  "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
  "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
]);

interface Located {
  path: string;
  node: SchemaNode;
}

/** Every schema node of a CRD with its location (`.spec.disks[*].name`). */
function nodesOf(schema: SchemaNode, path = ""): Located[] {
  const out: Located[] = [{ path, node: schema }];
  for (const [key, child] of Object.entries(schema.properties ?? {})) out.push(...nodesOf(child, `${path}.${key}`));
  if (schema.items) out.push(...nodesOf(schema.items, `${path}[*]`));
  if (typeof schema.additionalProperties === "object") out.push(...nodesOf(schema.additionalProperties, `${path}{*}`));
  return out;
}

function crdFiles(): { file: string; crd: CustomResourceDefinition }[] {
  return readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml")).flatMap((file) =>
    loadAll(readFileSync(join(CRD_DIR, file), "utf8")).map((doc) => ({ file, crd: doc as CustomResourceDefinition })));
}

function schemasOf(crd: CustomResourceDefinition): SchemaNode[] {
  return crd.spec.versions.map((v) => v.schema.openAPIV3Schema);
}

/** Follows printer-column JSONPath steps through the schema; undefined when a step names nothing. */
function schemaAt(schema: SchemaNode, jsonPath: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = schema;
  for (const step of parseJsonPath(jsonPath)) {
    if (!node) return undefined;
    if (step.kind === "field") node = step.name === "creationTimestamp" && node.type === "object" && !node.properties ? { type: "string" } : node.properties?.[step.name];
    else if (step.kind === "index" || step.kind === "all") node = node.items;
    else if (!node.items || !step.field.every((f) => node?.items?.properties?.[f])) return undefined;
    else node = node.items;
  }
  return node;
}

describe("the CRD files", () => {
  it("define one CRD per kind of types.ts, in group vireo.dev and category vireo", () => {
    const files = crdFiles();
    assert.deepEqual(files.map((f) => f.crd.spec.names.kind).sort(), [...KINDS].sort());
    assert.deepEqual(kinds(), [...KINDS]);
    assert.deepEqual(kindsInCategory("vireo"), [...KINDS]);
    for (const { file, crd } of files) {
      assert.equal(crd.apiVersion, "apiextensions.k8s.io/v1", file);
      assert.equal(crd.metadata.name, `${crd.spec.names.plural}.vireo.dev`, file);
      assert.equal(file, `vireo.dev_${crd.spec.names.plural}.yaml`);
      assert.ok((crd.spec.names.shortNames ?? []).length > 0, `${file} has short names`);
      for (const version of crd.spec.versions) assert.deepEqual(version.subresources, { status: {} }, `${file} has a status subresource`);
    }
  });

  it("are structural: every node is typed, metadata is a bare object, no unknown fields are preserved", () => {
    for (const { file, crd } of crdFiles()) {
      for (const schema of schemasOf(crd)) {
        assert.deepEqual(schema.properties?.metadata, { type: "object" }, file);
        for (const { path, node } of nodesOf(schema)) {
          assert.ok(node.type, `${file} ${path || "<root>"} has a type`);
          for (const keyword of Object.keys(node)) assert.ok(ALLOWED_KEYWORDS.has(keyword), `${file} ${path}: keyword ${keyword}`);
        }
      }
    }
  });

  it("bound every list, map and spec string, so CEL cost estimates stay within the API server's limits", () => {
    for (const { file, crd } of crdFiles()) {
      for (const schema of schemasOf(crd)) {
        for (const { path, node } of nodesOf(schema)) {
          if (node.type === "array") assert.ok(node.maxItems !== undefined, `${file} ${path} has maxItems`);
          if (node.type === "object" && typeof node.additionalProperties === "object") assert.ok(node.maxProperties !== undefined, `${file} ${path} has maxProperties`);
          if (node.type === "string" && path.startsWith(".spec")) assert.ok(node.maxLength !== undefined || node.enum !== undefined, `${file} ${path} is bounded`);
        }
      }
    }
  });

  it("key every map list by required fields", () => {
    for (const { file, crd } of crdFiles()) {
      for (const schema of schemasOf(crd)) {
        for (const { path, node } of nodesOf(schema)) {
          if (node["x-kubernetes-list-type"] !== "map") continue;
          const keys = node["x-kubernetes-list-map-keys"] ?? [];
          assert.ok(keys.length > 0, `${file} ${path} names its keys`);
          for (const key of keys) assert.ok(node.items?.required?.includes(key), `${file} ${path}: key ${key} is required`);
        }
      }
    }
  });

  it("use only CEL rules that compile, carry a message and point at declared fields", () => {
    let rules = 0;
    for (const { file, crd } of crdFiles()) {
      for (const schema of schemasOf(crd)) {
        for (const { path, node } of nodesOf(schema)) {
          for (const rule of node["x-kubernetes-validations"] ?? []) {
            rules++;
            assert.doesNotThrow(() => compileRule(rule.rule), `${file} ${path}: ${rule.rule}`);
            assert.ok(rule.message, `${file} ${path}: ${rule.rule} has a message`);
            if (rule.fieldPath) {
              const target = rule.fieldPath.slice(1).split(".").reduce<SchemaNode | undefined>((n, field) => n?.properties?.[field], node);
              assert.ok(target, `${file} ${path}: fieldPath ${rule.fieldPath} is a declared property`);
            }
          }
        }
      }
    }
    assert.ok(rules >= 10, `expected the CRDs to carry CEL rules, found ${rules}`);
  });

  it("have printer columns whose JSONPaths name fields of the schema", () => {
    for (const kind of kinds()) {
      const columns = printerColumns(kind);
      assert.ok(columns.some((c) => c.name === "Age" && c.type === "date"), `${kind} has an Age column`);
      for (const column of columns) assert.ok(schemaAt(openAPISchema(kind), column.jsonPath), `${kind} column ${column.name}: ${column.jsonPath}`);
    }
  });

  it("show readiness from the Ready condition on host clusters and VMs", () => {
    for (const kind of ["HostCluster", "VirtualMachine"] as const) {
      const ready = printerColumns(kind).find((c) => c.name === "Ready");
      assert.equal(ready?.jsonPath, '.status.conditions[?(@.type=="Ready")].status');
    }
  });
});

describe("resource names", () => {
  it("resolve kinds, plurals, singulars, short names and group-qualified names", () => {
    assert.equal(kindForResource("vm"), "VirtualMachine");
    assert.equal(kindForResource("vms"), "VirtualMachine");
    assert.equal(kindForResource("VirtualMachine"), "VirtualMachine");
    assert.equal(kindForResource("virtualmachines.vireo.dev"), "VirtualMachine");
    assert.equal(kindForResource("hosts"), "Host");
    assert.equal(kindForResource("vhost"), "Host");
    assert.equal(kindForResource("hc"), "HostCluster");
    assert.equal(kindForResource("pods"), undefined);
    assert.equal(crdFor("Host").spec.scope, "Cluster");
    assert.equal(crdFor("VirtualMachine").spec.scope, "Namespaced");
  });
});

describe("CEL rule compilation", () => {
  it("refuses a rule that does not parse", () => {
    assert.throws(() => compileRule("self.a.all(x, x > 0"), CelRuleError);
  });

  it("refuses a Kubernetes extension function the file mode cannot evaluate", () => {
    assert.throws(() => compileRule("self.features.isSorted()"), /isSorted/);
  });

  it("refuses a reference to anything but self and oldSelf", () => {
    assert.throws(() => compileRule("object.spec.cpu > 0"), /undeclared reference to 'object'/);
  });

  it("marks rules that use oldSelf as transition rules", () => {
    assert.equal(compileRule("self == oldSelf").transition, true);
    assert.equal(compileRule("self.all(x, x.size() > 0)").transition, false);
  });

  it("binds integer fields as CEL ints, so integer arithmetic works as on the API server", () => {
    const schema: SchemaNode = { type: "object", properties: { memoryMiB: { type: "integer" }, ratio: { type: "number" } } };
    const rule = compileRule("self.memoryMiB % 4 == 0 && self.ratio > 1.5");
    assert.deepEqual(runRule(rule, toCel({ memoryMiB: 1024, ratio: 2 }, schema)), { passed: true });
    assert.deepEqual(runRule(rule, toCel({ memoryMiB: 1023, ratio: 2 }, schema)), { passed: false });
  });

  it("reads RE2's leading flag group in matches()", () => {
    assert.deepEqual(runRule(compileRule("self.matches('(?i)^esx-')"), "ESX-01"), { passed: true });
  });

  it("fails a rule whose pattern JavaScript cannot read instead of passing it", () => {
    const outcome = runRule(compileRule("self.matches('^\\\\pN+$')"), "123");
    assert.ok(!outcome.passed && outcome.evaluationError, "an evaluation error");
  });

  it("reports an evaluation error instead of passing", () => {
    const outcome = runRule(compileRule("self.missing == 1"), toCel({}, { type: "object" }));
    assert.equal(outcome.passed, false);
    assert.ok(!outcome.passed && outcome.evaluationError);
  });
});
