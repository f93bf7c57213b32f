// The merge patch the API mode sends for status: applied as the API server applies it (RFC 7386), it
// must leave exactly the new status, dropping what the planner left out.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { statusMergePatch } from "../../controller/sources/kube/writer.ts";

/** RFC 7386, section 2, as the API server applies a merge patch. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

const RUNNING = {
  observedGeneration: 1,
  phase: "Running",
  host: "esx-01",
  startedAt: "2025-01-01T00:00:00.000Z",
  drift: { operations: [{ op: "replace", path: "/power", value: "Off" }], count: 1, since: "2025-01-01T00:01:00.000Z" },
  conditions: [{ type: "Ready", status: "True", reason: "Running", message: "running on esx-01", lastTransitionTime: "2025-01-01T00:00:00.000Z" }],
};

test("a key the new status leaves out is set to null; the rest of the new status is sent whole", () => {
  const { host: _host, drift: _drift, ...rest } = RUNNING;
  const stopped = { ...rest, phase: "Stopped", conditions: [{ type: "Ready", status: "True", reason: "Halted", message: "stopped", lastTransitionTime: "2025-01-01T00:02:00.000Z" }] };
  assert.deepEqual(statusMergePatch(RUNNING, stopped), { ...stopped, host: null, drift: null });
  assert.deepEqual(applyMergePatch(RUNNING, statusMergePatch(RUNNING, stopped)), stopped);
});

test("inside an object both statuses hold, a dropped key is set to null too", () => {
  const before = { failoverCapacity: { tolerates: 0, required: 1, worstCase: ["h1"], unplaceable: 2 }, hostsReady: 3 };
  const after = { failoverCapacity: { tolerates: 1, required: 1 }, hostsReady: 3 };
  assert.deepEqual(statusMergePatch(before, after), { failoverCapacity: { tolerates: 1, required: 1, worstCase: null, unplaceable: null }, hostsReady: 3 });
});

test("arrays are sent whole, as a merge patch replaces them: no nulls inside them", () => {
  const before = { datastores: [{ name: "ds1", pathsUp: 0, state: "AllPathsDown", allPathsDownSince: "2025-01-01T00:00:00.000Z" }] };
  const after = { datastores: [{ name: "ds1", pathsUp: 2, state: "Ok" }] };
  assert.deepEqual(statusMergePatch(before, after), after);
});

test("with no previous status, or an unchanged one, the patch is the new status", () => {
  assert.deepEqual(statusMergePatch(undefined, RUNNING), RUNNING);
  assert.deepEqual(statusMergePatch(RUNNING, RUNNING), RUNNING);
});

test("an undefined key counts as absent: never sent, and null only when the previous status had a value", () => {
  assert.deepEqual(statusMergePatch({ phase: "Running", host: "esx-01" }, { phase: "Stopped", host: undefined }), { phase: "Stopped", host: null });
  assert.deepEqual(statusMergePatch({ phase: "Running", host: undefined }, { phase: "Stopped" }), { phase: "Stopped" });
});

test("a key that changes between an object and a scalar or an array is replaced", () => {
  assert.deepEqual(statusMergePatch({ a: { b: 1 } }, { a: [1] }), { a: [1] });
  assert.deepEqual(statusMergePatch({ a: [1] }, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(statusMergePatch({ a: "x" }, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(statusMergePatch({ a: { b: 1 } }, { a: 2 }), { a: 2 });
});

// Statuses as JSON without nulls (Vireo never writes null into status: absent means absent).
const value = fc.letrec((tie) => ({
  json: fc.oneof({ depthSize: "small", withCrossShrink: true }, fc.boolean(), fc.integer(), fc.string({ maxLength: 3 }), fc.array(tie("json"), { maxLength: 3 }), tie("object")),
  object: fc.dictionary(fc.constantFrom("host", "drift", "phase", "count", "since", "worstCase", "a", "b"), tie("json"), { maxKeys: 5 }),
}));

test("applied to the previous status, the patch gives exactly the new one (any two statuses)", () => {
  const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  fc.assert(fc.property(value.object.map(plain), value.object.map(plain), (before, after) => {
    assert.deepEqual(applyMergePatch(before, statusMergePatch(before, after)), after);
  }), { numRuns: 2_000 });
});
