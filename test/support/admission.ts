// Manifests put to the CRDs' admission as `kubectl apply` would meet it: changed from a base YAML, accepted
// (defaulted), or refused with an error at an exact field path.

import assert from "node:assert/strict";
import { load } from "js-yaml";
import { formatFieldErrors, validateManifest } from "../../controller/api/schema.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Doc = Record<string, any>;

/** The YAML's object, with `change` applied to it. */
export function changed(yaml: string, change: (d: Doc) => void): Doc {
  const d = load(yaml) as Doc;
  change(d);
  return d;
}

/** The manifest as admitted (defaulted); fails the test with the errors when refused. */
export function accepted<T>(input: unknown): T {
  const result = validateManifest(input);
  if (!result.ok) assert.fail(`expected the manifest to be accepted, got:\n${formatFieldErrors(result.errors)}`);
  return result.object as T;
}

/** Asserts that the manifest is refused with an error at exactly `path` whose message contains `message`. */
export function refusedAt(input: unknown, path: string, message: string): void {
  const result = validateManifest(input);
  assert.equal(result.ok, false, `expected the manifest to be refused: ${JSON.stringify(input)}`);
  const errors = result.ok ? [] : result.errors;
  assert.ok(errors.some((e) => e.path === path && e.message.includes(message)), `expected an error at ${JSON.stringify(path)} containing ${JSON.stringify(message)}, got:\n${formatFieldErrors(errors)}`);
}
