// What the API mode keeps of an object the API server sends: everything Vireo reads, without the
// server's field-ownership records and kubectl's copy of the last applied manifest.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { VirtualMachine } from "../../controller/api/types.ts";
import { LAST_APPLIED_ANNOTATION, storedForm } from "../../controller/sources/kube/stored-form.ts";

function fromServer(annotations?: Record<string, string>): VirtualMachine {
  return {
    apiVersion: "vireo.dev/v1alpha1",
    kind: "VirtualMachine",
    metadata: {
      name: "web-1", namespace: "shop", uid: "u-1", resourceVersion: "42", generation: 3,
      labels: { app: "web" },
      ...(annotations ? { annotations } : {}),
      finalizers: ["vireo.dev/cleanup"],
      managedFields: [{ manager: "kubectl-client-side-apply", operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:spec": { "f:cpu": {} } } }],
    } as VirtualMachine["metadata"],
    spec: { cpu: 2, memoryMiB: 2048 } as VirtualMachine["spec"],
    status: { phase: "Running", host: "esx-01" } as VirtualMachine["status"],
  };
}

test("a VM applied with kubectl is stored without managed fields and without the last-applied annotation", () => {
  const vm = storedForm(fromServer({ [LAST_APPLIED_ANNOTATION]: "{\"kind\":\"VirtualMachine\"}" }));
  assert.deepEqual(vm.metadata, { name: "web-1", namespace: "shop", uid: "u-1", resourceVersion: "42", generation: 3, labels: { app: "web" }, finalizers: ["vireo.dev/cleanup"] });
  assert.deepEqual(vm.spec, { cpu: 2, memoryMiB: 2048 });
  assert.deepEqual(vm.status, { phase: "Running", host: "esx-01" });
});

test("annotations Vireo or a person set are kept: a lab's template digest still reads the same", () => {
  const vm = storedForm(fromServer({ [LAST_APPLIED_ANNOTATION]: "{}", "vireo.dev/template-hash": "abc", note: "mine" }));
  assert.deepEqual(vm.metadata.annotations, { "vireo.dev/template-hash": "abc", note: "mine" });
  assert.equal("managedFields" in vm.metadata, false);
});

test("an object with neither is stored as it came", () => {
  const vm = fromServer({ note: "mine" });
  delete (vm.metadata as { managedFields?: unknown }).managedFields;
  const before = structuredClone(vm);
  assert.equal(storedForm(vm), vm);
  assert.deepEqual(vm, before);
});
