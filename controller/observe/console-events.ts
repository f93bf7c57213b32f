// The latest events, kept for the console in a bounded ring: the recorder the controller is given passes
// each event on (to the log or to Kubernetes Events) and keeps a copy here.

import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { EventRecorder, EventType } from "../engine/context.ts";

/** An event as the console shows it. */
export interface ConsoleEvent {
  /** Sequence number, increasing: the order events were recorded in. */
  i: number;
  /** When (the controller's clock), ms since the epoch. */
  t: number;
  /** "W" for Warning, "N" for Normal. */
  y: "W" | "N";
  /** Reason, PascalCase. */
  r: string;
  /** The object: "Kind/name" or "Kind/namespace/name". */
  o: string;
  /** Message. */
  m: string;
}

/** How many events the ring keeps by default: enough for a drill of a large cluster, a few hundred KiB. */
export const DEFAULT_EVENT_CAPACITY = 2_000;

export class EventRing {
  private readonly capacity: number;
  private readonly ring: ConsoleEvent[] = [];
  private start = 0;
  private next = 1;
  private readonly listeners: ((event: ConsoleEvent) => void)[] = [];

  constructor(capacity = DEFAULT_EVENT_CAPACITY) {
    if (!(capacity >= 1)) throw new RangeError(`event capacity must be at least 1, got ${capacity}`);
    this.capacity = capacity;
  }

  append(event: Omit<ConsoleEvent, "i">): ConsoleEvent {
    const entry = { i: this.next++, ...event };
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else {
      this.ring[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
    for (const listener of this.listeners) listener(entry);
    return entry;
  }

  /** The events kept, oldest first; the last `limit` of them when given. */
  list(limit = this.capacity): ConsoleEvent[] {
    const ordered = [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
    return limit >= ordered.length ? ordered : ordered.slice(ordered.length - limit);
  }

  /** The events kept about one object, oldest first. */
  about(objectKey: string): ConsoleEvent[] {
    return this.list().filter((e) => e.o === objectKey);
  }

  onAppend(listener: (event: ConsoleEvent) => void): void {
    this.listeners.push(listener);
  }
}

/** Passes every event to `inner` and keeps a copy in `ring`, timed by `now` (the controller's clock). */
export function recordingInto(ring: EventRing, inner: EventRecorder, now: () => number): EventRecorder {
  return {
    record(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): void {
      inner.record(object, type, reason, message);
      ring.append({ t: now(), y: type === "Warning" ? "W" : "N", r: reason, o: keyOf(object as VireoObject), m: message });
    },
  };
}
