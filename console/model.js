// The console's model of the fleet: built from the snapshot (/api/fleet), then changed in place by each
// batch the stream sends. Version counters tell the views what to recompute; a host's list of VMs is a
// new array only when a VM on it changed, so unchanged host tiles are not drawn again.

/** Events kept in the page, like the server's ring. */
export const MAX_EVENTS = 2000;

/** Columns of a VM row (the server's VM_COLUMNS). */
export const NS = 0, NAME = 1, PHASE = 2, HOST = 3, CLUSTER = 4, LABELS = 5, OWNER = 6, LAB = 7, FLAGS = 8;

/** Bits of a row's flags (the server's VM_FLAGS). */
export const FLAG = { notReady: 1, drifted: 2, migrating: 4, failingOver: 8, rpoViolated: 16 };

export function vmKey(row) {
  return `${row[NS]}/${row[NAME]}`;
}

function byName(a, b) {
  return a[NAME] < b[NAME] ? -1 : a[NAME] > b[NAME] ? 1 : a[NS] < b[NS] ? -1 : a[NS] > b[NS] ? 1 : 0;
}

export function createModel(snapshot) {
  const model = {
    epoch: snapshot.epoch,
    seq: snapshot.seq,
    now: snapshot.now,
    mode: snapshot.mode,
    standby: snapshot.standby,
    clusters: new Map(snapshot.clusters.map((c) => [c.n, c])),
    hosts: new Map(snapshot.hosts.map((h) => [h.n, h])),
    vms: new Map(snapshot.vms.map((row) => [vmKey(row), row])),
    labelSets: snapshot.labelSets.slice(),
    byHost: new Map(),
    events: snapshot.events.slice(-MAX_EVENTS),
    keysVersion: 0,
    vmsVersion: 0,
    hostsVersion: 0,
    eventsVersion: 0,
  };
  for (const row of model.vms.values()) {
    if (!row[HOST]) continue;
    const list = model.byHost.get(row[HOST]);
    if (list) list.push(row);
    else model.byHost.set(row[HOST], [row]);
  }
  for (const list of model.byHost.values()) list.sort(byName);
  return model;
}

/**
 * Applies one batch. Returns the VMs ("namespace/name") whose row or detail changed, so an open detail
 * pane knows to fetch again.
 */
export function applyChanges(model, changes) {
  model.seq = changes.seq;
  model.now = changes.now;
  for (const [index, labels] of changes.labelSets ?? []) model.labelSets[index] = labels;
  for (const view of changes.clusters ?? []) model.clusters.set(view.n, view);
  for (const view of changes.hosts ?? []) model.hosts.set(view.n, view);
  for (const name of changes.deleted?.clusters ?? []) model.clusters.delete(name);
  for (const name of changes.deleted?.hosts ?? []) model.hosts.delete(name);
  if (changes.clusters || changes.hosts || changes.deleted?.clusters || changes.deleted?.hosts) model.hostsVersion += 1;
  const touched = applyVms(model, changes.vms ?? [], changes.deleted?.vms ?? []);
  if (changes.events?.length) {
    model.events.push(...changes.events);
    if (model.events.length > MAX_EVENTS) model.events.splice(0, model.events.length - MAX_EVENTS);
    model.eventsVersion += 1;
  }
  for (const key of changes.details ?? []) touched.add(key);
  return touched;
}

function applyVms(model, rows, deleted) {
  const touched = new Set();
  if (rows.length === 0 && deleted.length === 0) return touched;
  const hostsTouched = new Set();
  let keysChanged = false;
  for (const row of rows) {
    const key = vmKey(row);
    const old = model.vms.get(key);
    if (old?.[HOST]) hostsTouched.add(old[HOST]);
    else if (!old) keysChanged = true;
    if (row[HOST]) hostsTouched.add(row[HOST]);
    model.vms.set(key, row);
    touched.add(key);
  }
  for (const key of deleted) {
    const old = model.vms.get(key);
    if (!old) continue;
    if (old[HOST]) hostsTouched.add(old[HOST]);
    model.vms.delete(key);
    touched.add(key);
    keysChanged = true;
  }
  const arrived = new Map();
  for (const key of touched) {
    const row = model.vms.get(key);
    if (!row?.[HOST]) continue;
    const list = arrived.get(row[HOST]);
    if (list) list.push(row);
    else arrived.set(row[HOST], [row]);
  }
  for (const host of hostsTouched) regroup(model, host, touched, arrived.get(host) ?? []);
  model.vmsVersion += 1;
  if (keysChanged) model.keysVersion += 1;
  return touched;
}

/** The host's VM list again: the untouched rows kept, the touched ones where they are now. */
function regroup(model, host, touched, arrived) {
  const kept = (model.byHost.get(host) ?? []).filter((row) => !touched.has(vmKey(row)));
  kept.push(...arrived);
  kept.sort(byName);
  if (kept.length) model.byHost.set(host, kept);
  else model.byHost.delete(host);
}

/** VMs sorted by namespace, then name: the list's order. */
export function sortedKeys(model) {
  return [...model.vms.keys()].sort();
}
