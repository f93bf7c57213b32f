// The objects Vireo makes, written straight into the store: the file mode's and the virtual clock's way.
// Each is admitted as the API server would (validated and defaulted by its CRD) and given the identity it
// would get there (uid, generation, creation time); a deletion takes effect at once.

import { randomUUID } from "node:crypto";
import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { Clock } from "../core/clock.ts";
import type { ObjectWriter } from "../engine/context.ts";
import { withIdentity } from "./identity.ts";
import type { ObjectStore } from "./store.ts";
import type { StateDirectory } from "../state/state-dir.ts";

/** `newUid` names each new object (a seeded one makes a virtual-clock run repeat exactly). */
export function storeObjectWriter(store: ObjectStore, clock: Clock, newUid: () => string = randomUUID): ObjectWriter {
  return {
    async apply(object) {
      // Admitted as the API server would: validated and defaulted by its CRD, or refused with the field paths.
      const { status: _status, ...manifest } = object as VireoObject;
      // Loaded when first used: the API mode, whose API server admits objects, never carries the schemas.
      const { formatFieldErrors, validateManifest } = await import("../api/schema.ts");
      const admitted = validateManifest(manifest);
      if (!admitted.ok) throw new Error(`${object.kind} ${object.metadata.name} is invalid: ${formatFieldErrors(admitted.errors)}`);
      const previous = store.get(keyOf(admitted.object));
      store.upsert(withIdentity(admitted.object, previous, clock.now(), newUid));
    },
    async delete(object) {
      store.delete(keyOf(object as VireoObject));
    },
  };
}

/**
 * The file mode's writer: the store's, and the state directory keeps each object Vireo made (with no
 * manifest of its own), so it is restored with its identity and status after a restart and `vireo get`,
 * `vireo plan` and `vireo report` see it.
 */
export function stateObjectWriter(store: ObjectStore, state: StateDirectory, clock: Clock): ObjectWriter {
  const inStore = storeObjectWriter(store, clock);
  return {
    async apply(object) {
      await inStore.apply(object);
      const made = store.get(keyOf(object as VireoObject));
      if (made) state.put(made);
    },
    async delete(object) {
      await inStore.delete(object);
      state.remove(keyOf(object as VireoObject));
    },
  };
}
