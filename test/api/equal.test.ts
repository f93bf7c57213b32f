import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonEqual } from "../../controller/api/equal.ts";

test("values equal but for the order of their keys are equal, as the API server hands them back sorted", () => {
  assert.equal(jsonEqual({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }, { conditions: [{ status: "True", type: "Ready" }], phase: "Running" }), true);
});

test("an undefined field is the same as an absent one", () => {
  assert.equal(jsonEqual({ host: undefined, phase: "Stopped" }, { phase: "Stopped" }), true);
});

test("different values, lengths, array order and types are different", () => {
  assert.equal(jsonEqual({ a: 1 }, { a: 2 }), false);
  assert.equal(jsonEqual({ a: 1 }, { a: 1, b: 2 }), false);
  assert.equal(jsonEqual([1, 2], [2, 1]), false);
  assert.equal(jsonEqual([1], { 0: 1 }), false);
  assert.equal(jsonEqual(null, {}), false);
  assert.equal(jsonEqual("1", 1), false);
});
