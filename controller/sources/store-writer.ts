// The objects Vireo makes, written straight into the store: the file mode's and the virtual clock's way.
// The store gives them the identity the API server would (uid, generation, creation time), and a deletion
// takes effect at once — as on the API server, once Vireo's own finalizer work is done.

import { randomUUID } from "node:crypto";
import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { Clock } from "../core/clock.ts";
import type { ObjectWriter } from "../engine/context.ts";
import { withIdentity } from "./identity.ts";
import type { ObjectStore } from "./store.ts";

export function storeObjectWriter(store: ObjectStore, clock: Clock): ObjectWriter {
  return {
    async apply(object) {
      const previous = store.get(keyOf(object as VireoObject));
      store.upsert(withIdentity(object as VireoObject, previous, clock.now(), randomUUID));
    },
    async delete(object) {
      store.delete(keyOf(object as VireoObject));
    },
  };
}
