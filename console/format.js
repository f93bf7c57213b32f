// Numbers and times as the console prints them.

import { h } from "./vendor/preact.mjs";
import htm from "./vendor/htm.mjs";

/** Tagged templates for Preact. Every ${value} inside text or an attribute is set as text, never as HTML. */
export const html = htm.bind(h);

export function percent(part, whole) {
  return whole > 0 ? Math.min(100, Math.max(0, (part / whole) * 100)) : 0;
}

export function gib(mib) {
  const g = mib / 1024;
  return `${g >= 100 ? Math.round(g) : Math.round(g * 10) / 10} GiB`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A time of the controller's clock (ms, or an ISO string), as the hour, minute and second it shows. */
export function clockTime(t) {
  const date = typeof t === "number" ? new Date(t) : new Date(Date.parse(t));
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().slice(11, 19);
}

/** How long ago, by the controller's clock (the time the last batch carried). */
export function ago(t, now) {
  const then = typeof t === "number" ? t : Date.parse(t);
  if (!Number.isFinite(then) || !Number.isFinite(now)) return "";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Host and VM phases that are trouble, that are in between, and that are fine: one colour each. */
const TONES = {
  Ready: "ok", Running: "ok", Stopped: "idle", Maintenance: "idle", Unknown: "idle",
  EnteringMaintenance: "busy", Starting: "busy", Stopping: "busy", Migrating: "busy", Pending: "busy",
  NotResponding: "warn", Isolated: "warn", Partitioned: "warn", Unschedulable: "warn",
  Failed: "bad",
};

export function tone(phase) {
  return TONES[phase] ?? "idle";
}
