// What Vireo keeps of an object the API server sends: all of it but the server's field-ownership records
// and kubectl's copy of the last applied manifest. Vireo reads neither (its status and finalizer writes are
// merge patches, and its own objects go out by server-side apply from what the planner states, never from
// what was read), and together they were two thirds of the store's memory at 1,000 VMs: the managed fields
// of each VM alone about 4 KB, renewed with every status write (docs/decisions/0013).

import type { VireoObject } from "../../api/types.ts";

export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * The object without metadata.managedFields and the last-applied annotation (nor the annotations, if that
 * was the only one). The object is one just decoded from the API server, not yet shared: its metadata is
 * replaced in place, by a copy rather than by deleting keys, which would leave V8 a slower, larger object.
 */
export function storedForm<T extends VireoObject>(object: T): T {
  const { managedFields, annotations, ...metadata } = object.metadata as T["metadata"] & { managedFields?: unknown };
  if (managedFields === undefined && (annotations === undefined || !(LAST_APPLIED_ANNOTATION in annotations))) return object;
  const kept = annotations === undefined ? {} : withoutLastApplied(annotations);
  object.metadata = Object.keys(kept).length > 0 ? { ...metadata, annotations: kept } : metadata;
  return object;
}

function withoutLastApplied(annotations: Readonly<Record<string, string>>): Record<string, string> {
  if (!(LAST_APPLIED_ANNOTATION in annotations)) return annotations as Record<string, string>;
  const { [LAST_APPLIED_ANNOTATION]: _lastApplied, ...rest } = annotations;
  return rest;
}
