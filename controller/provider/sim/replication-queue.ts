// The replicas' next events in time order: a binary heap of (due, VM id) with lazy removal, so moving one
// replica's event costs O(log n) however many replicas there are. Ties go by VM id, so a world restored
// from its file (whose queue is rebuilt) replays the same events in the same order.

import type { ReplicationIndex } from "./world.ts";

interface Entry {
  due: number;
  vm: string;
}

/** Stale entries beyond this multiple of the live ones (plus a little) make the heap be rebuilt. */
const STALE_FACTOR = 4;
const STALE_SLACK = 64;

/** Sets (or, with undefined, clears) the VM's next event. */
export function scheduleEvent(index: ReplicationIndex, vm: string, due: number | undefined): void {
  const current = index.scheduled.get(vm);
  if (current === due) return;
  if (due === undefined) {
    index.scheduled.delete(vm);
    return;
  }
  index.scheduled.set(vm, due);
  push(index.queue, { due, vm });
  if (index.queue.length > STALE_FACTOR * index.scheduled.size + STALE_SLACK) rebuild(index);
}

/** The earliest live event, if any, left in the queue. */
export function peekEvent(index: ReplicationIndex): Entry | undefined {
  const queue = index.queue;
  while (queue.length > 0 && index.scheduled.get(queue[0]!.vm) !== queue[0]!.due) pop(queue);
  return queue[0];
}

/** Takes the earliest live event off the queue. */
export function takeEvent(index: ReplicationIndex): Entry | undefined {
  const next = peekEvent(index);
  if (!next) return undefined;
  pop(index.queue);
  index.scheduled.delete(next.vm);
  return next;
}

export function clearEvents(index: ReplicationIndex): void {
  index.queue.length = 0;
  index.scheduled.clear();
}

function rebuild(index: ReplicationIndex): void {
  index.queue.length = 0;
  for (const [vm, due] of index.scheduled) push(index.queue, { due, vm });
}

function before(a: Entry, b: Entry): boolean {
  return a.due < b.due || (a.due === b.due && a.vm < b.vm);
}

function push(queue: Entry[], entry: Entry): void {
  queue.push(entry);
  let i = queue.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(queue[i]!, queue[parent]!)) break;
    [queue[i], queue[parent]] = [queue[parent]!, queue[i]!];
    i = parent;
  }
}

function pop(queue: Entry[]): void {
  const last = queue.pop();
  if (queue.length === 0 || last === undefined) return;
  queue[0] = last;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let least = i;
    if (left < queue.length && before(queue[left]!, queue[least]!)) least = left;
    if (right < queue.length && before(queue[right]!, queue[least]!)) least = right;
    if (least === i) return;
    [queue[i], queue[least]] = [queue[least]!, queue[i]!];
    i = least;
  }
}
