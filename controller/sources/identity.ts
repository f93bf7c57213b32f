// What the API server would add to an object a source hands in: a uid, a creation time, and a
// generation that moves whenever the spec changes. The file mode does it itself, the same way.

import type { VireoObject } from "../api/types.ts";
import { jsonEqual } from "../api/equal.ts";

export function withIdentity(object: VireoObject, previous: VireoObject | undefined, now: number, newUid: () => string): VireoObject {
  const sameSpec = previous !== undefined && jsonEqual(previous.spec, object.spec);
  const generation = previous ? (previous.metadata.generation ?? 1) + (sameSpec ? 0 : 1) : 1;
  const metadata = {
    ...object.metadata,
    uid: previous?.metadata.uid ?? newUid(),
    generation,
    creationTimestamp: previous?.metadata.creationTimestamp ?? new Date(now).toISOString(),
  };
  const merged = { ...object, metadata } as VireoObject;
  if (previous?.status) merged.status = previous.status as never;
  return merged;
}
